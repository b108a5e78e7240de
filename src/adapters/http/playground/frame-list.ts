/**
 * The frame list: every frame the SDK's debug hook reports, in and out.
 * An encrypted frame shows its decrypted inner frame and, below it, the
 * ciphertext exactly as it crossed the socket.
 */
import type { WireFrame } from '../../sdk/signal-client.ts';
import { appendCapped, compactJson, element, timeElement } from './dom.ts';

const LIMIT = 500;

function outerEvent(raw: string): string | null {
  try {
    const value: unknown = JSON.parse(raw);
    if (typeof value === 'object' && value !== null && typeof (value as { event?: unknown }).event === 'string') {
      return (value as { event: string }).event;
    }
  } catch {
    // Not JSON: shown as it came.
  }
  return null;
}

export class FrameList {
  private readonly list: HTMLElement;
  private token = '';

  constructor(list: HTMLElement) {
    this.list = list;
  }

  /** The token in use; `authenticate` carries it, and the list shows it shortened. */
  useToken(token: string): void {
    this.token = token;
  }

  clear(): void {
    this.list.replaceChildren();
  }

  add(frame: WireFrame): void {
    const raw = this.redact(frame.raw);
    const outer = outerEvent(frame.raw);
    const inner = frame.decrypted;
    const event = inner?.event ?? outer ?? '(not a frame)';
    const badge = inner !== undefined ? 'encrypted' : outer === 'encrypted' ? 'not decrypted' : 'plaintext';

    const item = element('li', { className: frame.direction });
    item.dataset.direction = frame.direction;
    item.dataset.event = event;
    item.dataset.encrypted = String(outer === 'encrypted');
    const head = element('div', { className: 'head' }, [
      timeElement(),
      element('span', { className: 'dir', text: frame.direction === 'in' ? '↓ in' : '↑ out' }),
      element('span', { className: 'event', text: event }),
      element('span', { className: 'badge', text: badge }),
    ]);
    item.append(head);
    if (inner !== undefined) {
      item.append(
        element('span', { className: 'label', text: 'Decrypted frame' }),
        element('pre', { className: 'plain', text: compactJson(inner) }),
        element('span', { className: 'label', text: frame.direction === 'in' ? 'Ciphertext as received' : 'Ciphertext as sent' }),
        element('pre', { className: 'raw', text: raw }),
      );
    } else {
      item.append(element('pre', { className: outer === 'encrypted' ? 'raw' : 'plain', text: raw }));
    }
    appendCapped(this.list, item, LIMIT);
  }

  private redact(raw: string): string {
    if (this.token.length < 16 || !raw.includes(this.token)) return raw;
    return raw.split(this.token).join(`${this.token.slice(0, 10)}…(token, ${this.token.length} characters)`);
  }
}
