import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { openDatabase } from '../../../src/adapters/postgres/database.ts';
import { RawClient } from '../../fixtures/raw-client.ts';
import { Checks } from './checks.ts';
import { basicAuth, rawRequest, type RawResponse } from './http.ts';
import { runRouteMatrix, type ServiceCredentials } from './route-matrix.ts';
import type { SignalTarget } from './targets.ts';

/**
 * Who may see and change what: one user's inbox against another's, one
 * connection's direct messages against the rest, merchant rooms against the
 * membership rows, and the REST permission matrix. Needs a target with a
 * fresh PostgreSQL database and the embedded dev routes.
 */
export interface AuthorizationOptions {
  target: SignalTarget;
  service: ServiceCredentials;
  quick: boolean;
  log?: (line: string) => void;
}

export async function runAuthorization(options: AuthorizationOptions): Promise<Checks> {
  const checks = new Checks();
  const run = randomUUID().slice(0, 8);
  const clients: RawClient[] = [];
  const connect = async (userId: string): Promise<RawClient> => {
    const client = await RawClient.open(options.target.wsUrl);
    clients.push(client);
    const reply = await client.authenticate(await options.target.token(userId));
    if (reply.event !== 'connected') throw new Error(`${userId} could not connect: ${JSON.stringify(reply)}`);
    return client;
  };
  try {
    options.log?.('authorization: inbox');
    await inboxIsolation(options, checks, run, connect);
    options.log?.('authorization: direct messages');
    await directMessages(options, checks, connect);
    options.log?.('authorization: merchant rooms');
    await merchantRooms(options, checks, run, connect);
    options.log?.('authorization: REST matrix');
    await runRouteMatrix(options.target, options.service, checks);
  } finally {
    for (const client of clients) client.close();
  }
  return checks;
}

type Connect = (userId: string) => Promise<RawClient>;

/** Every message a client got before `marker`, which is delivered to it last. */
async function before(client: RawClient, marker: string): Promise<string[]> {
  const seen: string[] = [];
  for (;;) {
    const message = await client.nextMessage(5_000);
    if (message.event === marker) return seen;
    seen.push(message.event);
  }
}

async function inboxIsolation(options: AuthorizationOptions, checks: Checks, run: string, connect: Connect): Promise<void> {
  const { target } = options;
  const [a, b, c] = [`inbox-a-${run}`, `inbox-b-${run}`, `inbox-c-${run}`];
  const perUser = options.quick ? 4 : 15;
  const rest = async (method: string, path: string, userId: string): Promise<RawResponse> =>
    rawRequest(`${target.http}${path}`, { method, headers: { authorization: `Bearer ${await target.token(userId)}` } });
  const submit = (eventId: string, recipientIds: string[]) =>
    rawRequest(`${target.http}/dev/activity-events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ eventId, type: 'PAYMENT_SUCCESS', actorId: 'actor', scope: 'users', recipientIds, data: { orderCode: eventId } }),
    });

  const liveA = await connect(a);
  const liveB = await connect(b);
  for (let index = 0; index < perUser; index++) {
    for (const user of [a, b]) await submit(`ev-${run}-${user}-${index}`, [user]);
  }
  const shared = await submit(`ev-${run}-shared`, [a, b]);
  checks.equal('inbox: an event for two users creates two rows', { status: shared.status, body: shared.json }, { status: 202, body: { created: 2, recipients: 2 } });

  // Live pushes: each user got exactly their own.
  const marker = 'authorization-marker';
  const auth = basicAuth(options.service.user, options.service.password);
  const mark = (userId: string) =>
    rawRequest(`${target.http}/socket/websocket/clients/users/${userId}/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: auth },
      body: JSON.stringify({ event: marker }),
    });
  await mark(a);
  await mark(b);
  const pushesA = await before(liveA, marker);
  const pushesB = await before(liveB, marker);
  checks.equal('inbox: live pushes to A are only A\'s', pushesA.length, perUser + 1);
  checks.equal('inbox: live pushes to B are only B\'s', pushesB.length, perUser + 1);

  const list = async (userId: string) => (await rest('GET', '/notifications?limit=100', userId)).json as { count: number; items: Array<{ id: string; recipientId: string }> };
  const listA = await list(a);
  const listB = await list(b);
  const idsA = new Set(listA.items.map((item) => item.id));
  const idsB = listB.items.map((item) => item.id);
  checks.record('inbox: A lists exactly its own rows', listA.count === perUser + 1 && listA.items.every((item) => item.recipientId === a), `${perUser + 1} rows, all for A`, `${listA.count} rows, recipients ${[...new Set(listA.items.map((i) => i.recipientId))].join(',')}`);
  checks.record('inbox: B lists exactly its own rows', listB.count === perUser + 1 && listB.items.every((item) => item.recipientId === b), `${perUser + 1} rows, all for B`, `${listB.count} rows`);
  checks.equal('inbox: no row is listed for both', idsB.filter((id) => idsA.has(id)), []);
  checks.equal('inbox: a user with no rows sees none', (await list(c)).count, 0);
  for (const [label, userId] of [
    ['upper-case', b.toUpperCase()],
    ['trailing space', `${b} `],
    ['SQL quote', `${b}' or '1'='1`],
    ['LIKE wildcard', 'inbox-b-%'],
  ] as const) {
    checks.equal(`inbox: a look-alike user id (${label}) sees nothing`, (await list(userId)).count, 0);
  }
  const smuggled = await rest('GET', `/notifications?limit=100&recipientId=${b}&userId=${b}`, a);
  const smuggledItems = (smuggled.json as { items?: Array<{ recipientId: string }> } | undefined)?.items ?? [];
  checks.record('inbox: recipientId/userId query parameters do not widen the list', smuggled.status === 400 || smuggledItems.every((item) => item.recipientId === a), "400, or A's rows only", `${smuggled.status}, ${smuggledItems.length} items`);

  // Changing: A cannot mark B's rows, whichever id it tries.
  const guessed = new Set<string>(idsB);
  for (const id of idsB.slice(0, 4)) {
    const n = BigInt(id);
    for (const delta of [1n, -1n, 4096n, -4096n]) guessed.add((n + delta).toString());
  }
  for (const id of fc.sample(fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }), { numRuns: options.quick ? 10 : 100, seed: 7 })) guessed.add(id.toString());
  let refused = 0;
  const accepted: string[] = [];
  for (const id of guessed) {
    if (idsA.has(id)) continue;
    const response = await rest('PATCH', `/notifications/${id}/mark-read`, a);
    if (response.status === 404 && (response.json as { code?: string }).code === 'ERR_NOT_FOUND') refused += 1;
    else accepted.push(`${id} → ${response.status}`);
  }
  checks.equal(`inbox: A marking ${guessed.size} ids that are not its own gets 404 each`, accepted, []);
  const unreadB = async () => ((await rest('GET', '/notifications/count?isRead=false', b)).json as { count: number }).count;
  checks.equal("inbox: B's rows are still unread after A's attempts", await unreadB(), perUser + 1);

  const allA = await rest('PATCH', '/notifications/mark-all-read', a);
  checks.equal('inbox: mark-all-read changes only the caller\'s rows', allA.json, { updated: perUser + 1 });
  checks.equal("inbox: B's unread count is unchanged by A's mark-all-read", await unreadB(), perUser + 1);
  checks.equal('inbox: mark-all-read by a user with no rows updates nothing', (await rest('PATCH', '/notifications/mark-all-read', c)).json, { updated: 0 });
  const service = await rawRequest(`${target.http}/notifications/mark-all-read`, { method: 'PATCH', headers: { authorization: auth } });
  checks.record('inbox: a service principal has no inbox (401)', service.status === 401, '401', `${service.status} ${service.text}`);
  checks.equal("inbox: B's rows are unread at the end", await unreadB(), perUser + 1);
  checks.record(`inbox: ${refused} guessed ids refused`, refused > 0, '> 0', String(refused));
}

async function directMessages(options: AuthorizationOptions, checks: Checks, connect: Connect): Promise<void> {
  const { target } = options;
  const auth = basicAuth(options.service.user, options.service.password);
  const victim = await connect('dm-victim');
  const attacker = await connect('dm-attacker');
  const names = [victim.clientId, victim.clientId.toUpperCase(), `ws:client:${victim.clientId}`, `ws:user:dm-victim`, 'user:dm-victim', `{${victim.clientId}}`];
  attacker.send(attacker.encryptedFrame({ event: 'join', data: { rooms: names }, id: 'steal' }));
  const joined = await attacker.nextMessage();
  checks.equal("direct: joining rooms named after another client's id or user is refused", joined.data, { id: 'steal', rooms: [], rejected: names });

  const send = (path: string, body: unknown) =>
    rawRequest(`${target.http}/socket/websocket/clients${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: auth }, body: JSON.stringify(body) });
  // Client frames that look like sending instructions do nothing (the protocol has no client-to-client frame).
  for (const event of ['toClient', 'broadcast', 'send']) {
    attacker.send(attacker.encryptedFrame({ event, data: { clientId: victim.clientId, to: victim.clientId, event: 'from-attacker', data: 1 } }));
  }
  await send(`/${victim.clientId}/send`, { event: 'secret', data: { s: 1 } });
  await send(`/rooms/${victim.clientId}/send`, { event: 'secret-via-room', data: { s: 2 } });
  const guesses = options.quick ? 50 : 500;
  const missed: string[] = [];
  for (let index = 0; index < guesses; index++) {
    const response = await send(`/${randomUUID()}/send`, { event: 'guessed', data: index });
    if (response.status !== 200 || (response.json as { local?: number }).local !== 0) missed.push(`${response.status} ${response.text}`);
  }
  checks.equal(`direct: ${guesses} messages to random client ids reach no local connection`, missed, []);
  await send('/users/dm-victim/send', { event: 'marker' });
  await send('/users/dm-attacker/send', { event: 'marker' });
  checks.equal('direct: the victim got its direct message and nothing else', await before(victim, 'marker'), ['secret']);
  checks.equal('direct: the attacker got nothing', await before(attacker, 'marker'), []);
}

async function merchantRooms(options: AuthorizationOptions, checks: Checks, run: string, connect: Connect): Promise<void> {
  const { target } = options;
  if (target.databaseUrl === undefined) throw new Error('merchant rooms need a target with a fresh database');
  const [a, b] = [`member-a-${run}`, `member-b-${run}`];
  const db = await openDatabase(target.databaseUrl, { poolMax: 1 });
  try {
    // Memberships are written by other services; these rows are the cases the policy must tell apart.
    await db.orm.em.getConnection().execute(
      `insert into "PolicyDefinition" (variant, subject_type, subject_id, target_type, target_id, deleted_at) values
        ('g','user',?,'merchant','m-1',null), ('g','user',?,'merchant','m-2',null), ('g','user',?,'organizer','o-1',null),
        ('g','user',?,'merchant','m-3',now()), ('g','role',?,'merchant','m-4',null), ('p','user',?,'merchant','m-5',null)`,
      [a, b, b, a, a, a],
    );
  } finally {
    await db.close();
  }
  const memberA = await connect(a);
  const memberB = await connect(b);
  const refused = [
    'merchant:m-2', 'merchant:m-3', 'merchant:m-4', 'merchant:m-5', 'organizer:o-1', 'MERCHANT:m-2', 'merchant:M-2', 'merchant:m-2 ',
    ' merchant:m-2', 'merchant:', 'merchant:m-2\u0000', "merchant:' OR '1'='1", 'merchant:%', 'merchant:m-%', 'merchant:*', 'organizer:', `user:${b}`,
  ];
  memberA.send(memberA.encryptedFrame({ event: 'join', data: { rooms: ['merchant:m-1', ...refused] }, id: 'rooms' }));
  checks.equal('rooms: only the live user membership admits (deleted, role, grant and look-alikes refused)', (await memberA.nextMessage()).data, {
    id: 'rooms',
    rooms: ['merchant:m-1'],
    rejected: refused,
  });
  const randomIds = fc.sample(fc.string({ minLength: 1, maxLength: 40 }), { numRuns: options.quick ? 40 : 200, seed: 11 }).filter((id) => id !== 'm-1');
  const randomNames = randomIds.slice(0, 49).map((id) => `merchant:${id}`);
  memberA.send(memberA.encryptedFrame({ event: 'join', data: { rooms: randomNames }, id: 'random' }));
  const randomReply = (await memberA.nextMessage()).data as { rooms: string[] };
  checks.equal(`rooms: ${randomNames.length} random merchant ids are all refused`, randomReply.rooms, []);
  memberB.send(memberB.encryptedFrame({ event: 'join', data: { rooms: ['merchant:m-2', 'organizer:o-1', 'merchant:m-1'] }, id: 'b' }));
  checks.equal('rooms: a member joins its own merchant and organizer (control)', (await memberB.nextMessage()).data, {
    id: 'b',
    rooms: ['merchant:m-2', 'organizer:o-1'],
    rejected: ['merchant:m-1'],
  });

  const auth = basicAuth(options.service.user, options.service.password);
  const post = (path: string, body: unknown) =>
    rawRequest(`${target.http}/socket/websocket/clients${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: auth }, body: JSON.stringify(body) });
  await post('/rooms/merchant:m-2/send', { event: 'm2-news' });
  await post('/rooms/merchant:m-1/send', { event: 'm1-news' });
  await post(`/users/${a}/send`, { event: 'marker' });
  await post(`/users/${b}/send`, { event: 'marker' });
  checks.equal("rooms: A gets its merchant's messages and not B's", await before(memberA, 'marker'), ['m1-news']);
  checks.equal("rooms: B gets its merchant's messages and not A's", await before(memberB, 'marker'), ['m2-news']);
}
