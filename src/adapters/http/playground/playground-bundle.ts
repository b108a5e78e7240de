/**
 * The playground's script: playground-app.ts and the browser SDK it
 * imports, bundled by esbuild in memory. Nothing generated is written to
 * disk or committed; the bundle is built on the first request that needs it
 * and kept for the life of the process, so `npm start` pays nothing for a
 * page nobody opens.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';

export interface BuiltAsset {
  readonly body: Uint8Array<ArrayBuffer>;
  readonly type: string;
  readonly etag: string;
}

const ENTRY = join(import.meta.dirname, 'playground-app.ts');

export function asset(body: Uint8Array<ArrayBuffer>, type: string): BuiltAsset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

async function bundle(): Promise<BuiltAsset> {
  // Loaded only here: a process that never serves the playground never loads the bundler.
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    legalComments: 'none',
    charset: 'utf8',
    logLevel: 'silent',
  });
  const file = result.outputFiles[0];
  if (file === undefined) throw new Error('esbuild produced no output');
  return asset(new Uint8Array(file.contents), 'text/javascript; charset=utf-8');
}

/**
 * One build shared by every request. A failed build is forgotten, so a
 * later request tries again rather than serving the failure forever.
 */
export function lazyBundle(onError: (error: unknown) => void): () => Promise<BuiltAsset> {
  let pending: Promise<BuiltAsset> | undefined;
  return () => {
    pending ??= bundle().catch((error: unknown) => {
      pending = undefined;
      onError(error);
      throw error;
    });
    return pending;
  };
}
