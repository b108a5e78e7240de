import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../fixtures/server-process.ts';
import { startTestServer, type TestServer } from '../fixtures/test-server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/**
 * Other processes consume the SDK and the emitter from the packed package
 * through its subpath exports, as plain JavaScript with type declarations:
 * no TypeScript loader on their side.
 */
let consumer: string;
let server: TestServer;

beforeAll(async () => {
  const work = mkdtempSync(join(tmpdir(), 'signal-pack-'));
  execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: ROOT, stdio: 'pipe', timeout: 120_000 });
  const tarball = readdirSync(work).find((name) => name.endsWith('.tgz')) as string;
  consumer = join(work, 'consumer');
  const target = join(consumer, 'node_modules', 'signal');
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', join(work, tarball), '-C', target, '--strip-components=1']);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
  server = await startTestServer();
}, 180_000);

afterAll(async () => {
  await server?.running.stop();
});

describe('package subpath exports', () => {
  it('lets plain Node import the SDK, connect, and decrypt a message', async () => {
    const token = await server.token('pkg-user');
    writeFileSync(
      join(consumer, 'client.mjs'),
      `import { SignalClient } from 'signal/sdk';
import WebSocket from '${join(ROOT, 'node_modules/ws/wrapper.mjs')}';
const client = new SignalClient({ url: process.argv[2], token: process.argv[3], WebSocket, reconnect: false });
client.on('message', ({ event, data }) => { console.log(JSON.stringify({ event, data })); client.close(); });
const info = await client.connect();
console.log(JSON.stringify({ connected: info.userId }));
`,
    );
    // Async: the server lives in this process, so blocking on the child would starve it.
    const child = spawn(process.execPath, ['client.mjs', server.url, token], { cwd: consumer, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await waitFor(() => lines.length >= 1, 15_000, 'the packaged client to connect');
      expect(lines[0]).toBe('{"connected":"pkg-user"}');
      await server.running.delivery.toUser('pkg-user', 'from-server', { n: 1 });
      expect(await exited).toBe(0);
      expect(lines[1]).toBe('{"event":"from-server","data":{"n":1}}');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('ships an emitter producing the bus payload byte for byte', () => {
    writeFileSync(
      join(consumer, 'emit.mjs'),
      `import { SignalEmitter } from 'signal/emitter';
const sent = [];
const emitter = new SignalEmitter({ publisher: { publish: async (channel, message) => sent.push([channel, message]) } });
await emitter.toRoom('merchant:42', 'order.updated', { orderId: 'o-1', status: 'PAID' });
console.log(JSON.stringify(sent));
`,
    );
    const result = spawnSync(process.execPath, ['emit.mjs'], { cwd: consumer, encoding: 'utf8', timeout: 20_000 });
    expect(JSON.parse(result.stdout)).toEqual([
      ['ws:room:merchant:42', '{"serverId":"emitter","type":"room","target":"merchant:42","event":"order.updated","data":{"orderId":"o-1","status":"PAID"}}'],
    ]);
  });

  it('ships type declarations that a strict TypeScript consumer compiles against', () => {
    writeFileSync(
      join(consumer, 'typed.ts'),
      `import { SignalClient, type CloseKind } from 'signal/sdk';
import { SignalEmitter } from 'signal/emitter';
const kind: CloseKind = 'auth-failed';
export const made = [SignalClient.name, SignalEmitter.name, kind];
`,
    );
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', noEmit: true, lib: ['ES2023', 'DOM'], types: [], skipLibCheck: false }, files: ['typed.ts'] }),
    );
    const result = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
      cwd: consumer,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
