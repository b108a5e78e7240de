import { request } from 'node:http';

/**
 * Raw HTTP over node:http: unlike fetch it sends any header value, chunked
 * bodies without a length and bodies on any method, and it never retries.
 */
export interface RawResponse {
  /** -1 when the request failed at the socket level (reset, timeout). */
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  json: unknown;
  ms: number;
  error?: string;
}

export interface RawRequest {
  method?: string;
  headers?: Record<string, string>;
  /** One part is sent with a Content-Length; several parts are written one by one, chunked. */
  body?: string | Buffer | Array<string | Buffer>;
  timeoutMs?: number;
}

export function rawRequest(url: string, options: RawRequest = {}): Promise<RawResponse> {
  const started = performance.now();
  const target = new URL(url);
  const headers = { ...options.headers };
  const single = options.body !== undefined && !Array.isArray(options.body);
  // One body part is sent with its length, as clients do; several parts go chunked.
  if (single && headers['transfer-encoding'] === undefined && headers['content-length'] === undefined) {
    headers['content-length'] = String(Buffer.byteLength(options.body as string | Buffer));
  }
  return new Promise((resolve) => {
    let settled = false;
    const finish = (response: Omit<RawResponse, 'ms'>) => {
      if (settled) return;
      settled = true;
      resolve({ ...response, ms: performance.now() - started });
    };
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        // The path is sent exactly as given: malformed escapes included.
        path: url.slice(url.indexOf('/', url.indexOf('//') + 2)),
        method: options.method ?? 'GET',
        headers,
        timeout: options.timeoutMs ?? 30_000,
        insecureHTTPParser: true,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => finish({ status: -1, headers: {}, text: '', json: undefined, error: error.message }));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          finish({ status: res.statusCode ?? -1, headers: res.headers, text, json: parseJson(text) });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no response within ${options.timeoutMs ?? 30_000} ms`)));
    req.on('error', (error) => finish({ status: -1, headers: {}, text: '', json: undefined, error: error.message }));
    const parts = options.body === undefined ? [] : Array.isArray(options.body) ? options.body : [options.body];
    for (const part of parts) req.write(part);
    req.end();
  });
}

function parseJson(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Signs of a leaked stack or of the server's file layout in a response body. */
export function leaksInBody(text: string): string[] {
  const found: string[] = [];
  if (/\n\s*at\s/.test(text) || /\bat\s+\S+\s+\(/.test(text) || /\bat\s+(?:async\s+)?\S+:\d+:\d+/.test(text)) found.push('stack frame');
  if (/(?:\/|\\)(?:src|node_modules|work|home|usr)(?:\/|\\)/.test(text)) found.push('file path');
  if (/\.(?:ts|js|mjs|cjs):\d+/.test(text)) found.push('source location');
  if (/file:\/\//.test(text)) found.push('file URL');
  return found;
}

/** `{code, message}` with string values and nothing else. */
export function isErrorBody(json: unknown): boolean {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return false;
  const keys = Object.keys(json).sort();
  const record = json as Record<string, unknown>;
  return keys.join(',') === 'code,message' && typeof record.code === 'string' && typeof record.message === 'string';
}

export const basicAuth = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
