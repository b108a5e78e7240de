import { Marked } from 'marked';
import sanitizeHtml from 'sanitize-html';
import type { ActivityEvent } from './activity-event.ts';

/**
 * What a notification says: a title, a markdown body and that body as
 * sanitised HTML. Event data comes from other services and, through them,
 * from end users (an order code, a display name), so every value is escaped
 * before it enters markdown, and the HTML is sanitised after rendering
 * whatever the markdown turned out to be.
 */

export interface NotificationContent {
  title: string;
  /** Markdown source. */
  content: string;
  /** `content` rendered and sanitised; safe to insert into a page. */
  html: string;
  metadata: Record<string, unknown>;
}

export function buildContent(event: ActivityEvent): NotificationContent {
  const { title, content } = event.type === 'PAYMENT_SUCCESS' ? paymentSuccess(event.data) : generic(event);
  return { title, content, html: renderMarkdown(content), metadata: metadataOf(event) };
}

function paymentSuccess(data: Record<string, unknown>): { title: string; content: string } {
  const orderCode = orderCodeOf(data['orderCode']);
  const amount = formatAmount(data['amount'], data['currency']);
  const order = orderCode === null ? 'Đơn hàng của bạn' : `Đơn hàng **${escapeMarkdown(orderCode)}**`;
  // A missing or unreadable amount is left out rather than shown as 0 or guessed.
  const paid = amount === null ? '' : ` Số tiền: **${amount}**.`;
  return { title: 'Thanh toán thành công', content: `${order} đã được thanh toán thành công.${paid}` };
}

const MAX_ORDER_CODE_LENGTH = 128;

function orderCodeOf(value: unknown): string | null {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value !== 'string') return null;
  const code = value.trim();
  return code.length > 0 && code.length <= MAX_ORDER_CODE_LENGTH ? code : null;
}

/** Publishers with decimal types send amounts as strings; both forms are read. */
const DECIMAL = /^-?\d{1,15}(?:\.\d{1,6})?$/;
const CURRENCY_CODE = /^[A-Za-z]{3}$/;

/**
 * The amount in Vietnamese formatting (`250.000 ₫`), or null when the amount
 * or the currency cannot be read. A malformed currency drops the amount
 * rather than showing it as VND, which could misstate the sum. The output
 * holds digits, separators and a currency sign or code only, so it needs
 * no markdown escaping.
 */
function formatAmount(amount: unknown, currency: unknown): string | null {
  let value: number;
  if (typeof amount === 'number') value = amount;
  else if (typeof amount === 'string' && DECIMAL.test(amount.trim())) value = Number(amount.trim());
  else return null;
  if (!Number.isFinite(value)) return null;

  let code = 'VND';
  if (currency !== undefined && currency !== null) {
    if (typeof currency !== 'string' || !CURRENCY_CODE.test(currency)) return null;
    code = currency.toUpperCase();
  }
  const format = currencyFormat(code);
  return format === null ? null : format.format(value);
}

/**
 * One formatter per currency code, made on first use: constructing an
 * Intl.NumberFormat costs far more than formatting with one. A code Intl
 * refuses is remembered as null. Publishers send a handful of codes; the
 * cap keeps a stream of made-up ones from growing the cache (past it, a
 * formatter is made per call, as before).
 */
const currencyFormats = new Map<string, Intl.NumberFormat | null>();
const MAX_CACHED_CURRENCIES = 64;

function currencyFormat(code: string): Intl.NumberFormat | null {
  let format = currencyFormats.get(code);
  if (format === undefined) {
    try {
      format = new Intl.NumberFormat('vi-VN', { style: 'currency', currency: code });
    } catch {
      format = null;
    }
    if (currencyFormats.size < MAX_CACHED_CURRENCIES) currencyFormats.set(code, format);
  }
  return format;
}

function generic(event: ActivityEvent): { title: string; content: string } {
  const title = humanizeType(event.type);
  // The title holds letters, digits and spaces only (see humanizeType), so it
  // is safe in markdown as it is; the actor id is escaped like any value.
  return { title, content: `**${title}** by ${escapeMarkdown(event.actorId)}.` };
}

/**
 * `ORDER_SHIPPED`, `order-shipped` and `orderShipped` all read "Order
 * shipped". Only letters and digits survive, so the title is plain text
 * whatever the publisher sent.
 */
export function humanizeType(type: string): string {
  const words = type
    .replace(/([\p{Ll}\p{N}])(\p{Lu})/gu, '$1 $2')
    .split(/[^\p{L}\p{N}]+/u)
    .filter((word) => word.length > 0)
    .map((word) => word.toLowerCase());
  if (words.length === 0) return 'Notification';
  const sentence = words.join(' ');
  return sentence.charAt(0).toUpperCase() + sentence.slice(1);
}

/**
 * Makes any text literal inside a markdown paragraph. Every ASCII
 * punctuation mark that can start markup (emphasis, links, autolinks,
 * entities, raw HTML, code) is backslash-escaped, which CommonMark defines
 * as the literal mark. Line breaks and control characters become spaces so
 * a value can never open a block of its own (a heading, a list, a fence).
 * `-`, `,`, `'`, `"`, `/`, `?`, `;` and `%` are left alone: mid-line they
 * are never markup, and order codes are full of hyphens.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ')
    .replace(/[\\`*_{}[\]()<>#+.!|~&:@$^=]/g, '\\$&');
}

function metadataOf(event: ActivityEvent): Record<string, unknown> {
  const metadata: Record<string, unknown> = { eventId: event.eventId, type: event.type, scope: event.scope };
  if (event.merchantId !== undefined) metadata['merchantId'] = event.merchantId;
  if (event.organizerId !== undefined) metadata['organizerId'] = event.organizerId;
  if (event.occurredAt !== undefined) metadata['occurredAt'] = event.occurredAt.toISOString();
  metadata['data'] = event.data;
  return metadata;
}

/** A private instance: options set on the shared `marked` elsewhere cannot change what we render. */
const markdown = new Marked({ async: false, gfm: true, breaks: false });

const SAFE_HREF = /^(?:https?:|mailto:)/i;

const SANITIZE_OPTIONS: sanitizeHtml.IOptions = {
  allowedTags: ['p', 'strong', 'em', 'a', 'ul', 'ol', 'li', 'code', 'pre', 'br', 'blockquote'],
  allowedAttributes: { a: ['href', 'rel'] },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowedSchemesByTag: {},
  allowedSchemesAppliedToAttributes: ['href'],
  allowProtocolRelative: false,
  disallowedTagsMode: 'discard',
  // Relative and scheme-less links are dropped too: a notification has no
  // base page they could meaningfully be relative to.
  transformTags: {
    a: (tagName, attribs) => {
      const href = attribs['href'];
      const safe: Record<string, string> = { rel: 'noopener noreferrer' };
      if (href !== undefined && SAFE_HREF.test(href.trim())) safe['href'] = href;
      return { tagName, attribs: safe };
    },
  },
};

/**
 * Markdown to HTML that is safe to insert into a page: only the tags above,
 * no event handlers or styles, links only to http, https and mailto.
 */
export function renderMarkdown(source: string): string {
  const html = markdown.parse(source, { async: false });
  return sanitizeHtml(html, SANITIZE_OPTIONS);
}
