import { describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/activity-event.ts';
import { buildContent, escapeMarkdown, humanizeType, renderMarkdown } from '../../src/domain/notification-content.ts';

const NBSP = '\u00a0';

function payment(data: Record<string, unknown>, overrides: Partial<ActivityEvent> = {}): ActivityEvent {
  return { eventId: 'e-123', type: 'PAYMENT_SUCCESS', actorId: 'u-1', scope: 'merchant', merchantId: 'm-1', recipientIds: [], data, ...overrides };
}

/**
 * Dangerous markup, not dangerous words: escaped text such as
 * "javascript:alert(1)" inside a paragraph is inert and may stay.
 */
function expectInert(html: string): void {
  const lower = html.toLowerCase();
  for (const fragment of ['<script', '<img', '<iframe', '<svg', '<style', '<object', '<embed', 'onerror=', 'onload=', 'onclick=', 'onmouseover=', 'style=', 'href="javascript', 'href="data', 'href="vbscript']) {
    expect(lower).not.toContain(fragment);
  }
  for (const tag of html.match(/<[^>]*>/g) ?? []) {
    expect(tag).toMatch(/^<\/?(p|strong|em|a|ul|ol|li|code|pre|br|blockquote)( rel="noopener noreferrer")?( href="(https?|mailto):[^"]*")?( \/)?>$/);
  }
}

describe('PAYMENT_SUCCESS content', () => {
  it('says in Vietnamese which order was paid and how much, in VND by default', () => {
    const built = buildContent(payment({ orderCode: 'SO-1001', amount: 250000 }));
    expect(built.title).toBe('Thanh toán thành công');
    expect(built.content).toBe(`Đơn hàng **SO-1001** đã được thanh toán thành công. Số tiền: **250.000${NBSP}₫**.`);
    expect(built.html).toBe(`<p>Đơn hàng <strong>SO-1001</strong> đã được thanh toán thành công. Số tiền: <strong>250.000${NBSP}₫</strong>.</p>\n`);
  });

  it('formats other currencies and amounts sent as decimal strings', () => {
    expect(buildContent(payment({ orderCode: 'A', amount: 12.5, currency: 'USD' })).content).toContain(`**12,50${NBSP}US$**`);
    expect(buildContent(payment({ orderCode: 'A', amount: '1500000' })).content).toContain(`**1.500.000${NBSP}₫**`);
    expect(buildContent(payment({ orderCode: 4711, amount: 1 })).content).toContain('**4711**');
  });

  it('falls back to clear text when the order code or amount is missing or unusable', () => {
    const cases: Array<Record<string, unknown>> = [
      {},
      { orderCode: '', amount: 'lots' },
      { orderCode: '   ', amount: Number.NaN },
      { orderCode: null, amount: null },
      { orderCode: { nested: true }, amount: [250000] },
      { orderCode: 'x'.repeat(129), amount: '1e400' },
      { amount: 5, currency: 'đồng' },
      { amount: 5, currency: 42 },
    ];
    for (const data of cases) {
      const built = buildContent(payment(data));
      expect(built.content).toBe('Đơn hàng của bạn đã được thanh toán thành công.');
      for (const text of [built.content, built.html]) {
        expect(text).not.toMatch(/undefined|NaN|null|Infinity|\[object/);
      }
    }
  });

  it('formats every amount in its own currency however many currencies came before (formatters are reused, their cache is bounded)', () => {
    // Many distinct well-formed codes: past the cache's bound formatters are made per call.
    const letters = 'ABCDEFGHIJ';
    const codes = [...letters].flatMap((a) => [...letters].map((b) => `X${a}${b}`));
    const fresh = (amount: number, code: string): string => new Intl.NumberFormat('vi-VN', { style: 'currency', currency: code }).format(amount);
    for (const [index, code] of codes.entries()) {
      expect(buildContent(payment({ orderCode: 'A', amount: index, currency: code })).content).toContain(`**${fresh(index, code)}**`);
    }
    for (let round = 0; round < 2; round++) {
      expect(buildContent(payment({ orderCode: 'A', amount: 12.5, currency: 'usd' })).content).toContain(`**12,50${NBSP}US$**`);
      expect(buildContent(payment({ orderCode: 'A', amount: 250000 })).content).toContain(`**250.000${NBSP}₫**`);
      expect(buildContent(payment({ orderCode: 'A', amount: 7, currency: 'XJJ' })).content).toContain(`**7,00${NBSP}XJJ**`);
      expect(buildContent(payment({ orderCode: 'A', amount: 7, currency: 'XAF' })).content).toContain(`**${fresh(7, 'XAF')}**`);
    }
  });

  it('shows the amount without an order code and the order code without an amount', () => {
    expect(buildContent(payment({ amount: 0 })).content).toBe(`Đơn hàng của bạn đã được thanh toán thành công. Số tiền: **0${NBSP}₫**.`);
    expect(buildContent(payment({ orderCode: 'SO-9' })).content).toBe('Đơn hàng **SO-9** đã được thanh toán thành công.');
  });

  it('keeps an order code with markup literal', () => {
    const built = buildContent(payment({ orderCode: 'SO-**1**<b>x</b>', amount: 1 }));
    expect(built.html).not.toContain('<b>');
    expect(built.html).toContain('&lt;b&gt;x&lt;/b&gt;');
    expect(built.html).toContain('<strong>SO-**1**&lt;b&gt;x&lt;/b&gt;</strong>');
    expect(built.html.match(/<strong>/g)).toHaveLength(2);
  });

  it('keeps hostile order codes from becoming links, HTML or blocks', () => {
    const hostile = [
      '<script>alert(1)</script>',
      '<img src=x onerror=alert(1)>',
      '[x](javascript:alert(1))',
      'https://evil.example/phish',
      'www.evil.example',
      'victim@evil.example',
      '&#106;avascript:alert(1)',
      'a\n\n# heading\n- item\n<iframe src=x>',
      '`code` ~~s~~ _e_ \\',
    ];
    for (const orderCode of hostile) {
      const built = buildContent(payment({ orderCode, amount: 1 }));
      expect(built.html).not.toMatch(/<(?!\/?(p|strong)>)/);
      expect(built.html.match(/<p>/g)).toHaveLength(1);
    }
  });
});

describe('content of other event types', () => {
  it('humanises the type and names the actor', () => {
    const built = buildContent(payment({}, { type: 'ORDER_SHIPPED', actorId: 'u-42' }));
    expect(built.title).toBe('Order shipped');
    expect(built.content).toBe('**Order shipped** by u-42.');
    expect(built.html).toBe('<p><strong>Order shipped</strong> by u-42.</p>\n');
  });

  it('keeps a hostile actor id and type literal', () => {
    const built = buildContent(payment({}, { type: '<img src=x onerror=alert(1)>', actorId: '<script>alert(1)</script>[x](javascript:alert(1))' }));
    expect(built.title).toBe('Img src x onerror alert 1');
    expectInert(built.html);
    expect(built.html).toContain('&lt;script&gt;');
  });

  it('humanises the usual spellings of a type', () => {
    expect(humanizeType('ORDER_SHIPPED')).toBe('Order shipped');
    expect(humanizeType('order-shipped')).toBe('Order shipped');
    expect(humanizeType('orderShipped')).toBe('Order shipped');
    expect(humanizeType('ticket.refund_REQUESTED')).toBe('Ticket refund requested');
    expect(humanizeType('THANH_TOÁN')).toBe('Thanh toán');
    expect(humanizeType('***')).toBe('Notification');
  });
});

describe('metadata', () => {
  it('carries the event identity, its scope ids, time and data', () => {
    const data = { orderCode: 'SO-1', amount: 5 };
    const built = buildContent(payment(data, { organizerId: 'o-1', occurredAt: new Date('2026-11-21T10:00:00Z') }));
    expect(built.metadata).toEqual({
      eventId: 'e-123',
      type: 'PAYMENT_SUCCESS',
      scope: 'merchant',
      merchantId: 'm-1',
      organizerId: 'o-1',
      occurredAt: '2026-11-21T10:00:00.000Z',
      data,
    });
  });

  it('leaves out the fields the event does not have', () => {
    const built = buildContent({ eventId: 'e', type: 'T', actorId: 'a', scope: 'users', recipientIds: ['b'], data: {} });
    expect(Object.keys(built.metadata).sort()).toEqual(['data', 'eventId', 'scope', 'type']);
  });
});

describe('escapeMarkdown', () => {
  it('makes markup characters literal and flattens line breaks', () => {
    expect(escapeMarkdown('a*b_c[d](e)<f>&g')).toBe('a\\*b\\_c\\[d\\]\\(e\\)\\<f\\>\\&g');
    expect(escapeMarkdown('x\r\n# y\u2028z')).toBe('x \\# y z');
    expect(escapeMarkdown('SO-1001, ok?')).toBe('SO-1001, ok?');
  });

  it('round-trips any text to the same visible text', () => {
    const text = 'a*b_c`d[e](f)<g>&amp;h\\i!j#k|l~m:n@o.p';
    const html = renderMarkdown(escapeMarkdown(text));
    expect(html).toBe('<p>a*b_c`d[e](f)&lt;g&gt;&amp;amp;h\\i!j#k|l~m:n@o.p</p>\n');
  });
});

describe('renderMarkdown', () => {
  it('renders ordinary markdown with the allowed tags', () => {
    const html = renderMarkdown('**bold** _em_ `code` [site](https://example.com) [mail](mailto:a@example.com)\n\n- one\n- two\n\n1. first\n\n> quoted\n\n```\nblock\n```\n\nline  \nbreak');
    expect(html).toContain('<strong>bold</strong>');
    expect(html).toContain('<em>em</em>');
    expect(html).toContain('<code>code</code>');
    expect(html).toContain('<a rel="noopener noreferrer" href="https://example.com">site</a>');
    expect(html).toContain('<a rel="noopener noreferrer" href="mailto:a@example.com">mail</a>');
    expect(html).toContain('<ul>\n<li>one</li>\n<li>two</li>\n</ul>');
    expect(html).toContain('<ol>\n<li>first</li>\n</ol>');
    expect(html).toContain('<blockquote>\n<p>quoted</p>\n</blockquote>');
    expect(html).toContain('<pre><code>block\n</code></pre>');
    expect(html).toContain('line<br />break');
  });

  it('removes scripts, styles and frames entirely', () => {
    const html = renderMarkdown('before <script>alert(1)</script><style>p{color:red}</style><iframe src="https://evil.example"></iframe> after');
    expect(html).toBe('<p>before  after</p>\n');
  });

  it('removes images and SVG with their event handlers', () => {
    for (const source of ['<img src=x onerror=alert(1)>', '<svg onload=alert(1)>', '<svg><script>alert(1)</script></svg>', '![x](https://evil.example/x.png)']) {
      const html = renderMarkdown(source);
      expectInert(html);
      expect(html).not.toContain('alert');
    }
  });

  it('strips event handlers and styles from allowed tags', () => {
    const html = renderMarkdown('<p onclick="alert(1)" style="color:red" class="x">hi</p><a href="https://ok.example" onmouseover="alert(1)" target="_blank">ok</a>');
    expectInert(html);
    expect(html).not.toContain('class=');
    expect(html).not.toContain('target=');
    expect(html).toContain('<a rel="noopener noreferrer" href="https://ok.example">ok</a>');
  });

  it('drops javascript: links in any spelling', () => {
    const sources = [
      '[x](javascript:alert(1))',
      '[x](JaVaScRiPt:alert(1))',
      '[x](&#106;avascript:alert(1))',
      '[x](&#x6A;avascript&#x3A;alert(1))',
      '<a href="&#106;&#97;vascript:alert(1)">x</a>',
      '<a href="java\tscript:alert(1)">x</a>',
      '<a href=" javascript:alert(1)">x</a>',
      '<javascript:alert(1)>',
    ];
    for (const source of sources) {
      const html = renderMarkdown(source);
      expectInert(html);
      expect(html).not.toContain('href=');
    }
  });

  it('drops data:, vbscript:, relative and protocol-relative links', () => {
    for (const href of ['data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==', 'vbscript:msgbox(1)', '/admin', '//evil.example/x', 'file:///etc/passwd']) {
      const html = renderMarkdown(`<a href="${href}">x</a> [y](${href})`);
      expect(html).not.toContain('href=');
      expect(html).toContain('x');
    }
  });

  it('always marks kept links noopener noreferrer, replacing a supplied rel', () => {
    const html = renderMarkdown('<a href="http://example.com" rel="opener">x</a>');
    expect(html).toBe('<p><a rel="noopener noreferrer" href="http://example.com">x</a></p>\n');
  });
});
