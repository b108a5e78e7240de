import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Elysia, t } from 'elysia';
import type { Logger } from '../../../application/ports/logger.port.ts';
import { NotFoundError } from '../../../domain/errors.ts';
import { asset, lazyBundle, type BuiltAsset } from './playground-bundle.ts';

export interface PlaygroundOptions {
  /** The REST prefix the app is mounted under; page and asset URLs are absolute. */
  basePath: string;
  /** The WebSocket path the page connects to, on the page's own host. */
  wsPath: string;
  /** HKDF info string; the page's client must use the server's. */
  ecdhInfo: string;
  /** Whether the embedded dev issuer's routes (`/dev/token`, `/dev/activity-events`) exist. */
  devRoutes: boolean;
  logger: Logger;
}

/** What the page reads before it offers anything: the shape playground-app.ts expects. */
export interface PlaygroundConfig {
  basePath: string;
  wsPath: string;
  ecdhInfo: string;
  devRoutes: boolean;
}

const HERE = import.meta.dirname;
const SCRIPT = 'playground.js';

/**
 * Everything from this origin, nothing inline: the page's script and
 * styles are separate same-origin files, and the only connections it makes
 * are its own REST calls and the /stream socket (CSP 'self' covers ws: and
 * wss: on the same host).
 */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function encode(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text);
}

function serve(found: BuiltAsset, ifNoneMatch: string | undefined): Response {
  // Fixed names, so browsers revalidate; the ETag makes that a 304.
  const common = { etag: found.etag, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };
  if (ifNoneMatch === found.etag) return new Response(null, { status: 304, headers: common });
  return new Response(found.body, { headers: { ...common, 'content-type': found.type } });
}

/**
 * The browser test client at `<base>/playground`: one page built from the
 * project's own browser SDK, served with its assets by this process alone.
 * It lists every frame in and out (ciphertext and plaintext), joins rooms
 * and reads the caller's inbox over REST; in embedded mode it also gets dev
 * tokens. Public, like the documentation UI: it holds no credentials itself.
 */
export function playgroundRoutes(options: PlaygroundOptions) {
  const { basePath, logger } = options;
  const config: PlaygroundConfig = {
    basePath,
    wsPath: options.wsPath,
    ecdhInfo: options.ecdhInfo,
    devRoutes: options.devRoutes,
  };
  const statics = new Map<string, BuiltAsset>([
    ['playground.css', asset(encode(readFileSync(join(HERE, 'playground.css'), 'utf8')), 'text/css; charset=utf-8')],
    ['icon.svg', asset(encode(readFileSync(join(HERE, 'icon.svg'), 'utf8')), 'image/svg+xml')],
  ]);
  const script = lazyBundle((error) =>
    logger.error({ err: error instanceof Error ? error.message : String(error) }, 'playground script build failed'),
  );
  const html = readFileSync(join(HERE, 'page.html'), 'utf8').replaceAll('{{base}}', escapeAttribute(basePath));
  const pageHeaders = {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-cache',
    'content-security-policy': PAGE_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };

  return new Elysia({ name: 'playground-routes' })
    .get(
      '/playground',
      () => {
        // Started now, so the script is usually ready by the time the page asks for it.
        script().catch(() => undefined);
        return new Response(html, { headers: pageHeaders });
      },
      { detail: { hide: true } },
    )
    .get('/playground/config.json', () => config, { detail: { hide: true } })
    .get(
      '/playground/assets/:name',
      async ({ params, headers }) => {
        if (params.name === SCRIPT) {
          try {
            return serve(await script(), headers['if-none-match']);
          } catch {
            return new Response(
              JSON.stringify({ code: 'PLAYGROUND_UNAVAILABLE', message: 'the playground script could not be built; see the server log' }),
              { status: 503, headers: { 'content-type': 'application/json' } },
            );
          }
        }
        const found = statics.get(params.name);
        if (found === undefined) throw new NotFoundError('asset');
        return serve(found, headers['if-none-match']);
      },
      { params: t.Object({ name: t.String({ maxLength: 128 }) }), detail: { hide: true } },
    );
}
