import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { openapi } from '@elysiajs/openapi';
import { Elysia, t } from 'elysia';
import { NotFoundError } from '../../domain/errors.ts';
import { CloseCodes } from '../../domain/protocol.ts';

export interface ApiDocsOptions {
  /** The REST prefix the app is mounted under; page and asset URLs are absolute. */
  basePath: string;
  /** Goes to `info.version`. */
  version: string;
  /** The WebSocket path, described in the document's introduction. */
  wsPath: string;
}

interface Asset {
  readonly body: Uint8Array<ArrayBuffer>;
  readonly type: string;
  readonly etag: string;
}

/** Why each close happens; keyed like the domain table so a new code cannot go undocumented. */
const CLOSE_WHEN: Record<keyof typeof CloseCodes, string> = {
  shuttingDown: 'the instance is shutting down gracefully',
  policyViolation: 'three undecryptable `encrypted` frames in a row',
  messageTooBig: 'an inbound frame over the size limit (128 KiB by default)',
  authTimeout: 'no `authenticate` within 5 s, or authentication and key exchange not done within 15 s',
  heartbeatTimeout: '90 s with no inbound frame and no pong',
  authFailed: 'wrong `type`, missing or rejected token (after an `error` frame)',
  encryptionRequired: 'client key missing while encryption is required, or malformed (after an `error` frame)',
  slowConsumer: "the client's unsent outbound data passed its bound (1 MiB by default)",
  rateLimited: 'inbound frames beyond the rate limit',
  tokenExpired: "the JWT's `exp` passed while connected",
  disconnectedByServer: 'an operator disconnected it through this API',
};

function describeService(wsPath: string): string {
  const closeRows = (Object.keys(CloseCodes) as Array<keyof typeof CloseCodes>)
    .map((key) => `| ${CloseCodes[key].code} | ${CloseCodes[key].reason} | ${CLOSE_WHEN[key]} |`)
    .join('\n');
  return `The REST surface of **signal**, the platform's real-time edge. Every response carries \`X-Request-Id\`
(the caller's own when it sends a well-formed one). Errors are JSON \`{code, message}\` (schema \`ErrorResponse\`),
never a stack trace.

## WebSocket protocol, in brief

Clients connect to **\`${wsPath}\`** on the same port as this API (that exact path, not under the REST prefix).
Every frame in either direction is one JSON text object \`{event, data?, id?}\`. The server never speaks first.
An upgrade it refuses gets a plain HTTP \`{code, message}\` answer: 403 (origin not allowed), 404 (other path),
503 (shutting down or full).

1. **Authenticate** within 5 s: event \`authenticate\` with data \`{type: "Bearer", token, clientPublicKey}\`:
   a JWT from the identity service and a fresh P-256 public key (raw uncompressed point, 65 bytes, in padded
   standard base64: 88 characters).
2. **Key exchange**: on success the server answers in plaintext with \`connected\`
   \`{id, userId, time, serverPublicKey, salt}\`. Both sides compute ECDH over P-256 and run HKDF-SHA-256 on the
   shared X coordinate with that salt and the configured info string (\`APP_ENV_WEBSOCKET_ECDH_INFO\`, by default
   \`ignis-ecdh-p256-aes-256-gcm-v1\`) to get a 32-byte AES key. The whole handshake must finish within 15 s.
3. **Encrypted frames**: after \`connected\` every server frame except \`error\` arrives as
   \`{event: "encrypted", data: {iv, ct}}\`: AES-256-GCM, a fresh 12-byte IV, \`ct\` = ciphertext followed by the
   16-byte tag, both base64, no associated data; the plaintext is the complete inner frame. Clients may encrypt
   their frames the same way or send them in plaintext.
4. **Then**: \`heartbeat\` every 30 s; \`join\` / \`leave\` with \`{rooms: [...]}\` (answered by \`joined\` / \`left\`
   when the frame has an \`id\`). Everyone is in \`ws-default\` and \`ws-notification\`; \`user:<own id>\` is open to its
   user, \`merchant:<id>\` and \`organizer:<id>\` to their members. Inbound frames are rate-limited
   (bursts of 100, 50 per second sustained). New notifications arrive as \`observation/signal/notification/created\`.

### Close codes

| code | reason | when |
|---|---|---|
${closeRows}

Reconnecting does not help after 4003, 4004 or 4008; after 4007, get a new token first.

## Redis bus (publishing from other services)

All instances share one Redis pub/sub bus, so a service reaches clients by publishing, without calling any
instance. The channel name is prefixed by \`APP_ENV_WEBSOCKET_REDIS_CHANNEL_PREFIX\` when one is set.

| channel | reaches |
|---|---|
| \`ws:broadcast\` | every connected client |
| \`ws:room:<room>\` | every member of the room |
| \`ws:client:<clientId>\` | one connection |
| \`ws:user:<userId>\` | every connection of one user |

The message is JSON with keys in this order, absent ones left out:
\`{serverId, type, target?, event, data, exclude?}\`. \`type\` is \`client\`, \`user\`, \`room\` or \`broadcast\`
(routing follows \`type\` and \`target\`, never the channel); publishers use \`serverId\` \`"emitter"\`; \`exclude\`
lists client ids to skip (rooms and broadcast only). Clients receive \`{event, data}\`, encrypted with their own
key. Delivery is at most once: an offline client does not get it later.

The complete protocol is \`docs/protocol.md\` in the service's repository.`;
}

const ErrorResponse: { type: 'object'; [key: string]: unknown } = {
  type: 'object',
  required: ['code', 'message'],
  properties: {
    code: { type: 'string', description: 'Stable machine-readable code', examples: ['ERR_UNAUTHORIZED'] },
    message: { type: 'string', description: 'Human-readable detail; for 400, names the offending field' },
  },
  additionalProperties: false,
};

const ERROR_REF = { $ref: '#/components/schemas/ErrorResponse' };

/** What each error status means on this API (the global error mapping in http-app). */
const ERROR_MEANING: Record<string, string> = {
  '400': 'Validation failed; the message names the field',
  '401': 'Missing or invalid credentials (with WWW-Authenticate)',
  '403': "Valid credentials without the route's permission",
  '404': 'No such resource',
  '409': 'Conflicts with the current state',
  '413': 'Request body over 1 MiB',
  '415': 'Request body that is not JSON: its Content-Type must be application/json (or application/<name>+json)',
  '503': 'A dependency is unavailable (the bus, or the identity key set)',
};

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

function isErrorShape(schema: unknown): boolean {
  if (!isObject(schema) || !isObject(schema.properties)) return false;
  const keys = Object.keys(schema.properties).sort();
  return keys.length === 2 && keys[0] === 'code' && keys[1] === 'message';
}

function errorResponse(status: string): Json {
  return { description: ERROR_MEANING[status] ?? 'Error', content: { 'application/json': { schema: ERROR_REF } } };
}

/**
 * Makes the error side of every operation explicit and uniform. Route
 * schemas declare their `{code, message}` bodies inline; here they become
 * references to the one shared schema, and the errors the global handler
 * produces for every route of a kind are added where a route left them out:
 * 401 wherever credentials are required, 400 wherever there is input to
 * validate; and 415, which the edge (body-limit.ts) answers before any
 * route runs, wherever there is a request body. Tags no route uses are
 * dropped. Idempotent: the plugin hands back the same cached document on
 * every request.
 */
function refineDocument(doc: Json): void {
  if (!isObject(doc.paths)) return;
  // A group's index route is registered as `<prefix>/`; the router also answers it without the slash, which is its name.
  const registered = doc.paths;
  const paths: Json = Object.fromEntries(
    Object.entries(registered).map(([path, item]) => {
      const bare = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
      return [Object.hasOwn(registered, bare) ? path : bare, item];
    }),
  );
  doc.paths = paths;
  const used = new Set<unknown>();
  for (const item of Object.values(paths)) {
    if (!isObject(item)) continue;
    for (const operation of Object.values(item)) {
      if (!isObject(operation)) continue;
      const responses: Json = isObject(operation.responses) ? operation.responses : {};
      for (const [status, response] of Object.entries(responses)) {
        if (Number(status) < 400 || !isObject(response) || !isObject(response.content)) continue;
        const json = response.content['application/json'];
        if (isObject(json) && isErrorShape(json.schema)) responses[status] = errorResponse(status);
      }
      const secured = Array.isArray(operation.security) && operation.security.length > 0;
      const hasInput = (Array.isArray(operation.parameters) && operation.parameters.length > 0) || operation.requestBody !== undefined;
      if (secured && responses['401'] === undefined) responses['401'] = errorResponse('401');
      if (hasInput && responses['400'] === undefined) responses['400'] = errorResponse('400');
      if (operation.requestBody !== undefined && responses['415'] === undefined) responses['415'] = errorResponse('415');
      if (Object.keys(responses).length > 0) operation.responses = responses;
      if (Array.isArray(operation.tags)) for (const tag of operation.tags) used.add(tag);
    }
  }
  // Route groups are mounted by configuration; a tag with nothing under it would be an empty section.
  if (Array.isArray(doc.tags)) doc.tags = doc.tags.filter((tag) => isObject(tag) && used.has(tag.name));
}

const require = createRequire(import.meta.url);
type AssetName = 'css' | 'bundle' | 'init' | 'icon';
let loaded: { assets: Map<string, Asset>; names: Record<AssetName, string> } | undefined;

function fingerprinted(name: string, body: Uint8Array<ArrayBuffer>, type: string, assets: Map<string, Asset>): string {
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
  const dot = name.lastIndexOf('.');
  const file = `${name.slice(0, dot)}.${hash}${name.slice(dot)}`;
  assets.set(file, { body, type, etag: `"${hash}"` });
  return file;
}

/**
 * The UI bundle, read once per process from the installed package, under
 * content-hashed names: a new bundle gets new URLs, so they can be cached
 * for good.
 */
function loadAssets(): { assets: Map<string, Asset>; names: Record<AssetName, string> } {
  if (loaded !== undefined) return loaded;
  const dist = dirname(require.resolve('swagger-ui-dist/package.json'));
  const assets = new Map<string, Asset>();
  const read = (file: string) => new Uint8Array(readFileSync(join(dist, file)));
  const names = {
    css: fingerprinted('swagger-ui.css', read('swagger-ui.css'), 'text/css; charset=utf-8', assets),
    bundle: fingerprinted('swagger-ui-bundle.js', read('swagger-ui-bundle.js'), 'text/javascript; charset=utf-8', assets),
    init: fingerprinted('api-docs.js', new TextEncoder().encode(INITIALIZER), 'text/javascript; charset=utf-8', assets),
    icon: fingerprinted('favicon-32x32.png', read('favicon-32x32.png'), 'image/png', assets),
  };
  loaded = { assets, names };
  return loaded;
}

/**
 * Starts the UI from a file rather than an inline script, so the page can
 * run under a CSP that allows same-origin scripts only. The validator badge
 * (a third-party service) stays off.
 */
const INITIALIZER = `(function () {
  var root = document.getElementById('api-docs');
  window.ui = SwaggerUIBundle({
    url: root.getAttribute('data-spec-url'),
    domNode: root,
    presets: [SwaggerUIBundle.presets.apis],
    deepLinking: true,
    validatorUrl: null,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
    tryItOutEnabled: false
  });
})();
`;

const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // Swagger UI sets inline style attributes; its icons are data: SVGs.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Interactive documentation: the OpenAPI 3.1 document at `/doc/openapi.json`
 * and the same UI at `/doc` and `/explorer`, relative to the app's prefix.
 * Everything the page loads is served by this process, so it works with no
 * internet access. The dev routes are documented (tagged `dev`) because they
 * exist only in embedded mode, where the document then describes them too.
 */
export function apiDocs(options: ApiDocsOptions) {
  const { basePath, version, wsPath } = options;
  const { assets, names } = loadAssets();
  const asset = (name: string) => escapeAttribute(`${basePath}/doc/assets/${name}`);
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>signal API</title>
<link rel="icon" type="image/png" href="${asset(names.icon)}">
<link rel="stylesheet" href="${asset(names.css)}">
</head>
<body>
<div id="api-docs" data-spec-url="${escapeAttribute(`${basePath}/doc/openapi.json`)}"></div>
<script src="${asset(names.bundle)}"></script>
<script src="${asset(names.init)}"></script>
</body>
</html>
`;
  const page = () =>
    new Response(html, {
      headers: {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-cache',
        'content-security-policy': PAGE_CSP,
        'x-content-type-options': 'nosniff',
      },
    });

  return new Elysia({ name: 'api-docs' })
    // Local to this plugin, so it sees only the routes below, of which the spec is the one returning a document.
    .onAfterHandle(({ responseValue }) => {
      if (isObject(responseValue) && typeof responseValue.openapi === 'string') refineDocument(responseValue);
    })
    .use(
      openapi({
        path: '/doc',
        specPath: '/doc/openapi.json',
        // The plugin's own page loads its UI from a CDN; the page below is served instead.
        provider: null,
        // Paths with a dot are otherwise dropped as static files, which would hide /dev/jwks.json.
        exclude: { staticFile: false },
        documentation: {
          info: { title: 'signal', version, description: describeService(wsPath) },
          tags: [
            { name: 'health', description: 'Liveness, readiness and instance status (public)' },
            { name: 'websocket', description: 'Reach live WebSocket clients, wherever they are connected' },
            { name: 'notifications', description: "The caller's own activity notifications" },
            { name: 'dev', description: 'Embedded mode only: the dev token issuer and a stand-in for the Kafka topic' },
          ],
          components: {
            securitySchemes: {
              bearerAuth: {
                type: 'http',
                scheme: 'bearer',
                bearerFormat: 'JWT',
                description: "A JWT from the identity service; the caller's roles must grant the route's permission",
              },
              basicAuth: {
                type: 'http',
                scheme: 'basic',
                description: 'Service credentials from APP_ENV_BASIC_AUTH_USERS; a service holds every permission',
              },
            },
            schemas: { ErrorResponse },
          },
        },
      }),
    )
    .get('/explorer', page, { detail: { hide: true } })
    .get('/doc', page, { detail: { hide: true } })
    .get(
      '/doc/assets/:name',
      ({ params, headers }) => {
        const found = assets.get(params.name);
        if (found === undefined) throw new NotFoundError('asset');
        const common = {
          etag: found.etag,
          'cache-control': 'public, max-age=31536000, immutable',
          'x-content-type-options': 'nosniff',
        };
        if (headers['if-none-match'] === found.etag) return new Response(null, { status: 304, headers: common });
        return new Response(found.body, { headers: { ...common, 'content-type': found.type } });
      },
      { params: t.Object({ name: t.String({ maxLength: 128 }) }), detail: { hide: true } },
    );
}
