import { connect, type Socket } from 'node:net';
import type { LoadReport, ToLoadWorker } from './http-load.ts';

/**
 * A keep-alive HTTP/1.1 load generator process: `connections` sockets, one
 * request in flight on each (no pipelining), the next sent as soon as the
 * previous response is complete, for a fixed duration. It writes the request
 * bytes itself and reads responses with a minimal parser (status line,
 * `content-length`, body), because a load generator must cost less per
 * request than the cheapest server it measures: node's http client (Agent
 * with keep-alive) took about 110 µs of CPU per request on the bench VM,
 * some four times the bare node:http server, and would have capped it.
 *
 * Every response is checked: status 200, a `content-length` body (chunked
 * fails the round), and a body starting with `expectPrefix`. A connection the
 * server closes during the round fails it.
 */
const HEADER_END = Buffer.from('\r\n\r\n');

interface Connection {
  readonly socket: Socket;
  pending: Buffer | null;
  sentAt: number;
}

function send(message: LoadReport | { type: 'failed'; message: string }): void {
  process.send?.(message);
}

async function runRound(message: Extract<ToLoadWorker, { type: 'round' }>): Promise<LoadReport> {
  const request = Buffer.from(`GET ${message.path} HTTP/1.1\r\nHost: ${message.host}:${message.port}\r\nAccept: application/json\r\n\r\n`, 'latin1');
  const expectPrefix = Buffer.from(message.expectPrefix, 'utf8');
  let running = false;
  let closing = false;
  let deadline = 0;
  let completed = 0;
  let late = 0;
  let inFlight = 0;
  let failure: string | null = null;
  let latencies = new Float64Array(1 << 16);
  let bodyBytes = 0;
  let onIdle: (() => void) | null = null;

  const fail = (reason: string): void => {
    failure ??= reason;
    running = false;
  };

  const record = (latencyMs: number): void => {
    if (completed === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[completed++] = latencyMs;
  };

  const fire = (connection: Connection): void => {
    connection.sentAt = performance.now();
    inFlight++;
    connection.socket.write(request);
  };

  /** Reads complete responses; each one frees its connection for the next request. */
  const onData = (connection: Connection, chunk: Buffer): void => {
    let data = connection.pending === null ? chunk : Buffer.concat([connection.pending, chunk]);
    connection.pending = null;
    for (;;) {
      const headerEnd = data.indexOf(HEADER_END);
      if (headerEnd === -1) {
        connection.pending = data;
        return;
      }
      const head = data.toString('latin1', 0, headerEnd);
      const status = Number(head.slice(9, 12));
      const lower = head.toLowerCase();
      const lengthAt = lower.indexOf('\r\ncontent-length:');
      if (lengthAt === -1) return fail(`response without content-length (${head.split('\r\n')[0]})`);
      const lengthEnd = lower.indexOf('\r\n', lengthAt + 2);
      const length = Number(lower.slice(lengthAt + 17, lengthEnd === -1 ? undefined : lengthEnd).trim());
      const bodyStart = headerEnd + HEADER_END.length;
      if (data.length < bodyStart + length) {
        connection.pending = data;
        return;
      }
      if (status !== 200) return fail(`HTTP ${status}`);
      if (data.compare(expectPrefix, 0, expectPrefix.length, bodyStart, bodyStart + expectPrefix.length) !== 0) {
        return fail(`unexpected body: ${data.toString('utf8', bodyStart, Math.min(bodyStart + length, bodyStart + 80))}`);
      }
      bodyBytes = length;
      const now = performance.now();
      inFlight--;
      if (now <= deadline) record(now - connection.sentAt);
      else late++;
      if (running && now < deadline) fire(connection);
      else if (inFlight === 0) onIdle?.();
      const rest = bodyStart + length;
      if (rest === data.length) return;
      // One request in flight per connection: anything more is a protocol error.
      return fail('more bytes than one response');
    }
  };

  const open = (): Promise<Connection> =>
    new Promise((resolveOpen, rejectOpen) => {
      const socket = connect({ host: message.host, port: message.port, noDelay: true });
      const connection: Connection = { socket, pending: null, sentAt: 0 };
      socket.once('connect', () => resolveOpen(connection));
      socket.once('error', (error) => {
        rejectOpen(error);
        fail(`socket error: ${error.message}`);
      });
      socket.on('data', (chunk: Buffer) => onData(connection, chunk));
      socket.once('close', () => {
        if (!closing) fail('the server closed a connection during the round');
      });
    });

  const connections = await Promise.all(Array.from({ length: message.connections }, open));
  const startedAt = performance.now();
  deadline = startedAt + message.durationMs;
  running = true;
  for (const connection of connections) fire(connection);

  await new Promise<void>((resolveRound) => {
    const finish = (): void => {
      clearTimeout(backstop);
      clearInterval(watch);
      resolveRound();
    };
    onIdle = finish;
    // Responses still in flight at the deadline get a bounded grace period.
    const backstop = setTimeout(() => {
      fail(`${inFlight} responses still outstanding ${message.graceMs} ms after the deadline`);
      finish();
    }, message.durationMs + message.graceMs);
    const watch = setInterval(() => {
      if (failure !== null) finish();
    }, 50);
  });

  closing = true;
  for (const connection of connections) connection.socket.destroy();
  if (failure !== null) throw new Error(failure);
  const sorted = latencies.subarray(0, completed).sort();
  const quantile = (q: number): number => (completed === 0 ? Number.NaN : sorted[Math.min(completed - 1, Math.floor(q * completed))]!);
  return {
    type: 'report',
    requests: completed,
    late,
    durationMs: message.durationMs,
    requestsPerSec: (completed * 1000) / message.durationMs,
    latencyMs: { p50: quantile(0.5), p90: quantile(0.9), p99: quantile(0.99), max: completed === 0 ? Number.NaN : sorted[completed - 1]! },
    bodyBytes,
  };
}

process.on('message', (message: ToLoadWorker) => {
  if (message.type === 'round') {
    runRound(message).then(send, (error: unknown) => send({ type: 'failed', message: (error as Error).message }));
  } else if (message.type === 'close') {
    process.disconnect?.();
  }
});

process.on('disconnect', () => setImmediate(() => process.exit(0)));
