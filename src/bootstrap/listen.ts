import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { DevIssuer } from '../adapters/jwks/dev-issuer.ts';
import { SignalClient, type WebSocketConstructor } from '../adapters/sdk/signal-client.ts';

/**
 * `npm run listen -- --user u1 [--room name]... [--url ws://host:port/stream]`
 * or `--token <jwt>`: connects with the SDK, completes the encrypted
 * handshake and prints every decrypted message as one JSON line. With
 * `--user`, the token comes from the embedded dev issuer (dev mode only).
 */
const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    token: { type: 'string' },
    user: { type: 'string' },
    role: { type: 'string', multiple: true },
    room: { type: 'string', multiple: true },
  },
});

function fail(message: string): never {
  process.stderr.write(`listen: ${message}\n`);
  process.exit(1);
}

const url = values.url ?? `ws://localhost:${process.env.PORT ?? '3000'}${process.env.APP_ENV_WEBSOCKET_PATH ?? '/stream'}`;
let token = values.token;
if (token === undefined) {
  if (values.user === undefined) fail('give --token <jwt> or --user <id> (dev mode)');
  if (process.env.APP_ENV_JWKS_URL !== undefined) fail('--user needs the embedded dev issuer; APP_ENV_JWKS_URL is set, pass --token');
  const issuer = await DevIssuer.loadOrCreate(resolve(process.env.APP_ENV_DATA_DIR ?? '.data'));
  token = await issuer.sign({ userId: values.user, roles: values.role });
}

const client = new SignalClient({ url, token, WebSocket: WebSocket as unknown as WebSocketConstructor });
client.on('message', ({ event, data }) => process.stdout.write(`${JSON.stringify({ event, data })}\n`));
client.on('error', ({ message }) => process.stderr.write(`listen: ${message}\n`));
client.on('close', ({ code, reason, kind, willReconnect }) =>
  process.stderr.write(`listen: closed ${code} ${reason} (${kind})${willReconnect ? ', reconnecting' : ''}\n`),
);
try {
  const info = await client.connect();
  process.stderr.write(`listen: connected as client ${info.clientId} (user ${info.userId}), encrypted: ${info.serverPublicKey !== undefined}\n`);
  if (values.room !== undefined && values.room.length > 0) {
    const result = await client.join(values.room);
    process.stderr.write(`listen: joined ${JSON.stringify(result.rooms)}, rejected ${JSON.stringify(result.rejected)}\n`);
  }
} catch (error) {
  fail(`could not connect to ${url}: ${(error as Error).message}`);
}
process.on('SIGINT', () => {
  client.close();
  process.exit(0);
});
