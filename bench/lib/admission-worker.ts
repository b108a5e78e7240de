import { openPeer, openSignal } from './client-connect.ts';
import type { FromAdmissionWorker, ToAdmissionWorker } from './worker-messages.ts';

/**
 * Connection admission load: `lanes` loops, each opening one connection
 * after another until the run's time is up. signal: connect, authenticate
 * with a fresh ECDH P-256 key pair, wait for `connected`, derive the
 * session key (computeSecret + HKDF), then close normally. Peer: Socket.IO
 * connect with the token in `auth`, wait for `connect`, then disconnect.
 * Only connections that completed before the deadline are counted.
 */
let closing = false;

function send(message: FromAdmissionWorker): void {
  process.send?.(message);
}

async function run(message: Extract<ToAdmissionWorker, { type: 'run' }>): Promise<void> {
  const started = performance.now();
  const deadline = started + message.durationMs;
  let completed = 0;
  let failed = 0;
  let firstError: string | undefined;
  let nextToken = 0;
  const latencies: number[] = [];

  const once = async (): Promise<void> => {
    const token = message.tokens[nextToken++ % message.tokens.length]!;
    const begin = performance.now();
    if (message.target === 'signal') {
      const client = await openSignal({ url: message.url, token, ecdhInfo: message.ecdhInfo });
      client.ws.close(1000);
    } else {
      const socket = await openPeer({ url: message.url, token });
      socket.disconnect();
    }
    const end = performance.now();
    if (end > deadline) return;
    completed++;
    latencies.push(end - begin);
  };
  const lane = async (): Promise<void> => {
    while (!closing && performance.now() < deadline) {
      try {
        await once();
      } catch (error) {
        if (performance.now() > deadline) return;
        failed++;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: message.lanes }, lane));
  send({ type: 'result', completed, failed, firstError, elapsedMs: message.durationMs, latenciesMs: latencies });
}

process.on('message', (message: ToAdmissionWorker) => {
  switch (message.type) {
    case 'run':
      run(message).catch((error: unknown) => send({ type: 'failed', message: (error as Error).message }));
      break;
    case 'close':
      closing = true;
      process.disconnect?.();
      break;
  }
});

process.on('disconnect', () => {
  closing = true;
  setImmediate(() => process.exit(0));
});
