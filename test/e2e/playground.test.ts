import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignalEmitter } from '../../src/adapters/emitter/signal-emitter.ts';
import { OfflineChromium, chromiumAvailable } from '../fixtures/browser.ts';
import { REDIS_URL, uniquePrefix } from '../fixtures/env.ts';
import { startTestServer, type TestServer } from '../fixtures/test-server.ts';

/**
 * The playground page in a real headless browser: it gets a dev token,
 * reaches ENCRYPTED, shows frames from the REST API and from a publisher on
 * the Redis bus (decrypted and as ciphertext), joins rooms, follows the
 * inbox live and reports close codes, at desktop and phone width, by mouse
 * and by keyboard, with every request off the loopback address refused.
 */
const HAVE_CHROMIUM = chromiumAvailable('playground');
const SCREENSHOT = resolve(import.meta.dirname, '../../test-results/playground.png');
const PHONE_SCREENSHOT = resolve(import.meta.dirname, '../../test-results/playground-phone.png');
const WAIT = 15_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe.skipIf(!HAVE_CHROMIUM)('the playground in headless Chromium', () => {
  const prefix = uniquePrefix('playground');
  let server: TestServer;
  let redis: Redis;
  let emitter: SignalEmitter;
  let browser: OfflineChromium;

  beforeAll(async () => {
    server = await startTestServer({ APP_ENV_WEBSOCKET_REDIS_URL: REDIS_URL, APP_ENV_WEBSOCKET_REDIS_CHANNEL_PREFIX: prefix });
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
    emitter = new SignalEmitter({ publisher: redis, channelPrefix: prefix });
    browser = await OfflineChromium.launch();
    browser.context.setDefaultTimeout(WAIT);
  });

  afterAll(async () => {
    await browser?.close();
    redis?.disconnect();
    await server?.running.stop();
  });

  async function open(base: string, viewport = { width: 1280, height: 900 }): Promise<{ page: Page; errors: string[] }> {
    const { page, errors } = await browser.newPage();
    await page.setViewportSize(viewport);
    const response = await page.goto(`${base}/playground`, { waitUntil: 'load', timeout: WAIT });
    expect(response?.status()).toBe(200);
    // The script removes its loading notice once the configuration is in.
    await page.locator('#boot').waitFor({ state: 'detached', timeout: WAIT });
    return { page, errors };
  }

  /** Every HTTP call of the test is bounded too. */
  const http = (url: string, init: RequestInit = {}) => fetch(url, { ...init, signal: AbortSignal.timeout(WAIT) });
  const text = (page: Page, selector: string) => page.locator(selector).innerText({ timeout: WAIT });
  const waitFor = (page: Page, selector: string, hasText?: string | RegExp) =>
    page.locator(selector, hasText === undefined ? {} : { hasText }).first().waitFor({ state: 'visible', timeout: WAIT });

  async function admin(method: string, path: string, body?: unknown): Promise<Response> {
    return http(`${server.http}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${await server.token('pg-operator', ['ADMIN'])}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  it('serves one page whose script and styles are same-origin files, under a CSP with nothing inline', async () => {
    const response = await http(`${server.http}/playground`);
    expect(response.status).toBe(200);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await response.text();
    expect(html).toContain('<script type="module" src="/v1/api/signal/playground/assets/playground.js"></script>');
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(html).not.toMatch(/https?:\/\//);

    const config = await (await http(`${server.http}/playground/config.json`)).json();
    expect(config).toEqual({ basePath: '/v1/api/signal', wsPath: '/stream', ecdhInfo: 'ignis-ecdh-p256-aes-256-gcm-v1', devRoutes: true });

    const script = await http(`${server.http}/playground/assets/playground.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const again = await http(`${server.http}/playground/assets/playground.js`, { headers: { 'if-none-match': script.headers.get('etag') ?? '' } });
    expect(again.status).toBe(304);
    expect((await http(`${server.http}/playground/assets/other.js`)).status).toBe(404);
  });

  it('connects, shows frames decrypted and as ciphertext, rooms, the live inbox and close codes', { timeout: 120_000 }, async () => {
    const { page, errors } = await open(server.http);
    expect(await page.locator('#get-token').isVisible()).toBe(true);

    await page.fill('#dev-user', 'pg-user');
    await page.fill('#dev-roles', 'ADMIN');
    await page.click('#get-token');
    await waitFor(page, '#token-status', 'Dev token for pg-user with roles ADMIN');
    const token = await page.inputValue('#token');
    expect(token.split('.')).toHaveLength(3);

    await page.fill('#heartbeat-interval', '1');
    await page.click('#connect');
    await waitFor(page, '#state', /^ENCRYPTED$/);
    const history = await text(page, '#history');
    const order = ['CONNECTING', 'AUTHENTICATED', 'ENCRYPTED'].map((state) => history.indexOf(state));
    expect(order.every((at) => at >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    const clientId = await text(page, '#client-id');
    expect(clientId).toMatch(UUID);
    expect(await text(page, '#user-id')).toBe('pg-user');

    // The handshake on the wire: authenticate out (token shortened on screen), connected in, both plaintext.
    const authenticate = await text(page, '#frames li[data-direction="out"][data-event="authenticate"]');
    expect(authenticate).toContain('"clientPublicKey"');
    expect(authenticate).not.toContain(token);
    expect(await text(page, '#frames li[data-direction="in"][data-event="connected"]')).toContain('"serverPublicKey"');

    // Heartbeats: the SDK's own every second (plaintext), and one on demand (encrypted like other frames).
    await waitFor(page, '#frames li[data-direction="out"][data-event="heartbeat"][data-encrypted="false"]');
    await page.click('#heartbeat');
    await waitFor(page, '#frames li[data-direction="out"][data-event="heartbeat"][data-encrypted="true"]');

    await page.fill('#rooms', 'user:pg-user, ws:x');
    await page.click('#join');
    await waitFor(page, '#room-results li', 'accepted: user:pg-user · rejected: ws:x');
    expect(await text(page, '#joined-rooms')).toBe('user:pg-user');
    const joined = await text(page, '#frames li[data-direction="in"][data-event="joined"]');
    expect(joined).toContain('"rejected":["ws:x"]');

    // A broadcast through the REST API and a room message from a publisher on the Redis bus.
    const broadcast = await admin('POST', '/socket/websocket/clients/broadcast', { event: 'system:announcement', data: { text: 'hello from REST' } });
    expect(broadcast.status).toBe(200);
    await emitter.toRoom('user:pg-user', 'order.updated', { orderId: 'o-1', status: 'PAID' });
    for (const [event, plain] of [
      ['system:announcement', '"data":{"text":"hello from REST"}'],
      ['order.updated', '"data":{"orderId":"o-1","status":"PAID"}'],
    ] as const) {
      const selector = `#frames li[data-direction="in"][data-event="${event}"]`;
      await waitFor(page, selector);
      const shown = await text(page, selector);
      expect(shown).toContain('Decrypted frame');
      expect(shown).toContain(plain);
      expect(shown).toContain('Ciphertext as received');
      expect(shown).toMatch(/\{"event":"encrypted","data":\{"iv":"[A-Za-z0-9+/=]+","ct":"[A-Za-z0-9+/=]+"\}\}/);
      // The ciphertext really is ciphertext: the plaintext appears only in the decrypted part.
      expect(await page.locator(`${selector} pre.raw`).innerText()).not.toContain('hello from REST');
    }

    // An activity event for this user: pushed live, then listed by the inbox, and marked read there.
    const submitted = await http(`${server.http}/dev/activity-events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        eventId: `pg-${randomUUID()}`,
        type: 'PAYMENT_SUCCESS',
        actorId: 'pg-operator',
        scope: 'users',
        recipientIds: ['pg-user'],
        occurredAt: new Date().toISOString(),
        data: { orderCode: 'SO-1001', amount: 250000, currency: 'VND' },
      }),
    });
    expect(submitted.status).toBe(202);
    await waitFor(page, '#frames li[data-direction="in"][data-event="observation/signal/notification/created"]');
    await waitFor(page, '#inbox-status', 'Live: new notification');
    await waitFor(page, '#unread-count', /^1$/);
    const listed = (await (
      await http(`${server.http}/notifications?limit=10`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { items: Array<{ id: string; title: string }> };
    expect(listed.items).toHaveLength(1);
    const item = page.locator(`#inbox li[data-id="${listed.items[0]!.id}"]`);
    expect(await item.innerText()).toContain(listed.items[0]!.title);
    expect(await item.getAttribute('class')).toBe('unread');
    await item.getByRole('button', { name: /^Mark read/ }).click();
    await waitFor(page, '#unread-count', /^0$/);
    await waitFor(page, `#inbox li.read[data-id="${listed.items[0]!.id}"]`);

    // An operator disconnects the client: 4008, named and explained; the SDK does not retry.
    expect((await admin('DELETE', `/socket/websocket/clients/${clientId}`)).status).toBeLessThan(300);
    await waitFor(page, '#last-close', '4008 Disconnected by server (disconnected-by-server)');
    await waitFor(page, '#state', /^CLOSED$/);
    expect(await text(page, '#last-close')).toContain('an operator disconnected this client');

    // Reconnect, then disconnect from the page: a fresh client id, then a normal close.
    await page.click('#reconnect');
    await waitFor(page, '#state', /^ENCRYPTED$/);
    expect(await text(page, '#client-id')).not.toBe(clientId);
    await page.click('#disconnect');
    await waitFor(page, '#last-close', '1000 Client closed (normal)');
    await waitFor(page, '#state', /^CLOSED$/);
    expect(await page.locator('#close-codes tr').count()).toBeGreaterThanOrEqual(13);

    mkdirSync(resolve(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('works at phone width (375 px) and by keyboard alone', { timeout: 60_000 }, async () => {
    const { page, errors } = await open(server.http, { width: 375, height: 812 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    for (const selector of ['#dev-user', '#get-token', '#token', '#connect', '#disconnect', '#join', '#refresh-inbox', '#clear-frames']) {
      const box = await page.locator(selector).boundingBox();
      expect(box, selector).not.toBeNull();
      expect(box!.x, selector).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width, selector).toBeLessThanOrEqual(375);
      expect(box!.height, selector).toBeGreaterThan(0);
    }

    // Tab from the top of the page, noting where focus lands, until it reaches the connect button.
    const focused = () => page.evaluate(() => document.activeElement?.id ?? '');
    const visited: string[] = [];
    const tabTo = async (id: string): Promise<void> => {
      for (let i = 0; i < 20; i += 1) {
        await page.keyboard.press('Tab');
        const now = await focused();
        visited.push(now);
        if (now === id) return;
      }
      throw new Error(`Tab never reached #${id}; visited ${visited.join(', ')}`);
    };
    await tabTo('dev-user');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('kb-user');
    await tabTo('get-token');
    await page.keyboard.press('Enter');
    await waitFor(page, '#token-status', 'Dev token for kb-user');
    await tabTo('connect');
    expect(visited.filter((id) => id !== '')).toEqual(['dev-user', 'dev-roles', 'get-token', 'token', 'heartbeat-interval', 'connect']);
    const outline = await page.evaluate(() => {
      const style = getComputedStyle(document.activeElement as Element);
      return { style: style.outlineStyle, width: style.outlineWidth };
    });
    expect(outline.style).not.toBe('none');
    expect(outline.width).not.toBe('0px');
    await page.keyboard.press('Enter');
    await waitFor(page, '#state', /^ENCRYPTED$/);
    expect(await text(page, '#user-id')).toBe('kb-user');
    // Still nothing wider than the screen with frames listed and the close-code table open.
    await page.locator('details.reference summary').click();
    await page.locator('#close-codes tr').first().waitFor({ state: 'visible', timeout: WAIT });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);

    mkdirSync(resolve(PHONE_SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: PHONE_SCREENSHOT, fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('offers no dev token when the server verifies against an identity service', async () => {
    const remote = await startTestServer({ APP_ENV_JWKS_URL: 'http://127.0.0.1:9/jwks.json' });
    try {
      const { page, errors } = await open(remote.http);
      expect(await page.locator('#get-token').isVisible()).toBe(false);
      await waitFor(page, '#dev-absent', 'no dev routes');
      expect(await page.locator('#connect').isVisible()).toBe(true);
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await remote.running.stop();
    }
  });

  it('asked for nothing beyond the loopback server, and every request it made succeeded', () => {
    expect(browser.refused).toEqual([]);
    expect(browser.failed).toEqual([]);
  });
});
