import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OfflineChromium, chromiumAvailable } from '../fixtures/browser.ts';
import { startTestServer, type TestServer } from '../fixtures/test-server.ts';

/**
 * The documentation UI in a real headless browser, with every request off
 * the loopback address refused: it must render from this process alone.
 */
const HAVE_CHROMIUM = chromiumAvailable('api-docs');
const SCREENSHOT = resolve(import.meta.dirname, '../../test-results/api-docs.png');

describe.skipIf(!HAVE_CHROMIUM)('the documentation UI in headless Chromium, offline', () => {
  let server: TestServer;
  let browser: OfflineChromium;

  beforeAll(async () => {
    server = await startTestServer();
    browser = await OfflineChromium.launch();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.running.stop();
  });

  async function open(path: string): Promise<{ page: Page; errors: string[] }> {
    const { page, errors } = await browser.newPage();
    const response = await page.goto(`${server.http}${path}`, { waitUntil: 'load' });
    expect(response?.status()).toBe(200);
    // The operation list is rendered once the document has been fetched and parsed.
    await page.locator('.opblock-summary-path').first().waitFor({ state: 'visible', timeout: 20_000 });
    return { page, errors };
  }

  it('renders the route list and the protocol summary at <base>/doc', async () => {
    const { page, errors } = await open('/doc');
    const paths = await page.locator('.opblock-summary-path').allInnerTexts();
    const joined = paths.join('\n');
    for (const path of [
      '/v1/api/signal/health',
      '/v1/api/signal/ready',
      '/v1/api/signal/socket/websocket/clients/status',
      '/v1/api/signal/socket/websocket/clients/broadcast',
      '/v1/api/signal/socket/websocket/clients/rooms/{room}/send',
      '/v1/api/signal/socket/websocket/clients/users/{userId}/send',
      '/v1/api/signal/socket/websocket/clients/{id}/send',
    ]) {
      expect(joined.replace(/\u200b/g, '')).toContain(path);
    }

    const text = await page.locator('body').innerText();
    expect(text).toContain('signal');
    expect(text).toContain('Close codes');
    expect(text).toContain('Disconnected by server');
    expect(text).toContain('ws:broadcast');
    // The security schemes make the Authorize button appear.
    await expect(page.locator('button.authorize').count()).resolves.toBeGreaterThan(0);

    mkdirSync(resolve(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);

    expect(errors).toEqual([]);
    await page.close();
  });

  it('renders the same UI at <base>/explorer', async () => {
    const { page, errors } = await open('/explorer');
    const text = (await page.locator('.opblock-summary-path').allInnerTexts()).join('\n').replace(/\u200b/g, '');
    expect(text).toContain('/v1/api/signal/socket/websocket/clients/broadcast');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('asked for nothing beyond the loopback server, and every request it made succeeded', () => {
    expect(browser.refused).toEqual([]);
    expect(browser.failed).toEqual([]);
  });
});
