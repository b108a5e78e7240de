/**
 * Small DOM helpers for the playground's browser modules. Everything the
 * server or a peer sent is written with textContent, never as markup, so
 * nothing on a frame or a notification can run in the page.
 */

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page has no #${id}`);
  return found as T;
}

export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  options: { className?: string; text?: string } = {},
  children: Array<Node | string> = [],
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (options.className !== undefined) node.className = options.className;
  if (options.text !== undefined) node.textContent = options.text;
  for (const child of children) node.append(child);
  return node;
}

function pad(value: number, width = 2): string {
  return String(value).padStart(width, '0');
}

/** Local wall-clock time with milliseconds: frames arrive closer together than a second. */
export function clockTime(at: Date = new Date()): string {
  return `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}.${pad(at.getMilliseconds(), 3)}`;
}

export function timeElement(at: Date = new Date()): HTMLTimeElement {
  const node = element('time', { text: clockTime(at) });
  node.dateTime = at.toISOString();
  return node;
}

/**
 * Appends an entry to a log list (a scroll box), keeping at most `limit`.
 * A list scrolled to its end follows new entries; one scrolled back for
 * reading stays where it is. Only the list scrolls, never the page.
 */
export function appendCapped(list: HTMLElement, item: HTMLElement, limit: number): void {
  const following = list.scrollHeight - list.scrollTop - list.clientHeight < 32;
  list.append(item);
  while (list.childElementCount > limit) list.firstElementChild?.remove();
  if (following) list.scrollTop = list.scrollHeight;
}

/** A line in a log list: time, then text. */
export function logLine(list: HTMLElement, text: string, options: { error?: boolean; limit?: number } = {}): void {
  const item = element('li', { className: options.error === true ? 'error' : '' }, [timeElement(), ' ', text]);
  appendCapped(list, item, options.limit ?? 200);
}

export function setStatus(node: HTMLElement, text: string, error = false): void {
  node.textContent = text;
  node.classList.toggle('error', error);
}

export function compactJson(value: unknown): string {
  if (value === undefined) return '(no data)';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
