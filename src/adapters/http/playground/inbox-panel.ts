/**
 * The caller's notification inbox over REST, with the same bearer token
 * the socket uses: the ten newest, the unread count, and mark-read.
 */
import { clockTime, element, errorMessage, setStatus } from './dom.ts';

interface NotificationView {
  id: string;
  type: string;
  title: string;
  content: string;
  isRead: boolean;
  createdAt: string;
}

export interface InboxNodes {
  list: HTMLElement;
  unread: HTMLElement;
  status: HTMLElement;
  refresh: HTMLElement;
}

export class InboxPanel {
  private readonly basePath: string;
  private readonly token: () => string;
  private readonly nodes: InboxNodes;
  /** Only the newest refresh may render: answers can come back out of order. */
  private generation = 0;

  constructor(basePath: string, token: () => string, nodes: InboxNodes) {
    this.basePath = basePath;
    this.token = token;
    this.nodes = nodes;
  }

  async refresh(note?: string): Promise<void> {
    const token = this.token();
    if (token === '') {
      setStatus(this.nodes.status, 'Paste or get a token to read the inbox.');
      return;
    }
    this.generation += 1;
    const generation = this.generation;
    try {
      const [page, unread] = await Promise.all([
        this.call<{ count: number; items: NotificationView[] }>('GET', '/notifications?limit=10', token),
        this.call<{ count: number }>('GET', '/notifications/count?isRead=false', token),
      ]);
      if (generation !== this.generation) return;
      this.nodes.unread.textContent = String(unread.count);
      this.nodes.list.replaceChildren(...page.items.map((item) => this.render(item)));
      const shown = page.items.length === 0 ? 'No notifications yet.' : `Showing ${page.items.length} of ${page.count}.`;
      setStatus(this.nodes.status, `${note === undefined ? '' : `${note} `}${shown} Updated ${clockTime()}.`);
    } catch (error) {
      if (generation === this.generation) setStatus(this.nodes.status, `Inbox: ${errorMessage(error)}`, true);
    }
  }

  /** A live `observation/signal/notification/created` push: say so, then reload the list. */
  pushed(data: unknown): void {
    const title = typeof data === 'object' && data !== null ? (data as { title?: unknown }).title : undefined;
    void this.refresh(`Live: new notification “${typeof title === 'string' ? title : '(untitled)'}”.`);
  }

  private async markRead(id: string, title: string): Promise<void> {
    try {
      await this.call('PATCH', `/notifications/${encodeURIComponent(id)}/mark-read`, this.token());
      await this.refresh(`Marked “${title}” read.`);
    } catch (error) {
      setStatus(this.nodes.status, `Mark read: ${errorMessage(error)}`, true);
    }
    // The pressed button is gone with the old list: keep keyboard focus in the inbox.
    const next = this.nodes.list.querySelector<HTMLButtonElement>('button:not(:disabled)');
    (next ?? this.nodes.refresh).focus();
  }

  private render(item: NotificationView): HTMLElement {
    const created = new Date(item.createdAt);
    const when = Number.isNaN(created.getTime()) ? item.createdAt : created.toLocaleString();
    const node = element('li', { className: item.isRead ? 'read' : 'unread' }, [
      element('div', { className: 'title', text: item.title }),
      element('div', { className: 'meta' }, [
        `${item.type} · ${when} · `,
        element('span', { className: 'badge', text: item.isRead ? 'read' : 'unread' }),
      ]),
      element('p', { className: 'content', text: item.content }),
    ]);
    node.dataset.id = item.id;
    if (!item.isRead) {
      const button = element('button', { text: 'Mark read' });
      button.type = 'button';
      // The visible text starts the name, so voice control users can say what they see.
      button.setAttribute('aria-label', `Mark read: ${item.title}`);
      button.addEventListener('click', () => {
        button.disabled = true;
        void this.markRead(item.id, item.title);
      });
      node.append(button);
    }
    return node;
  }

  private async call<T>(method: string, path: string, token: string): Promise<T> {
    const response = await fetch(`${this.basePath}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
    });
    const body: unknown = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = body as { code?: unknown; message?: unknown } | null;
      const text = typeof detail?.message === 'string' ? `${String(detail.code)}: ${detail.message}` : response.statusText;
      throw new Error(`${response.status} ${text}`);
    }
    return body as T;
  }
}
