import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/adapters/postgres/database.ts';
import { createFreshDatabase, type FreshDatabase } from '../fixtures/fresh-database.ts';
import { RawClient } from '../fixtures/raw-client.ts';
import { startTestServer, type TestServer } from '../fixtures/test-server.ts';
import { settle } from '../fixtures/wait-for.ts';

/**
 * An activity event through the whole pipeline on a real PostgreSQL: rows
 * stored, the encrypted push on the recipient's live connection, and the
 * REST inbox agreeing; a non-recipient sees nothing.
 */
let fresh: FreshDatabase;
let server: TestServer;
let sql: Database;
const raws: RawClient[] = [];

const PUSH = 'observation/signal/notification/created';
const event = {
  eventId: 'e-pay-1',
  type: 'PAYMENT_SUCCESS',
  actorId: 'u-actor',
  scope: 'merchant',
  merchantId: 'm-1',
  occurredAt: '2026-11-21T10:00:00Z',
  data: { orderCode: 'SO-1001', amount: 250000, currency: 'VND' },
};

async function connect(userId: string): Promise<RawClient> {
  const raw = await RawClient.open(server.url);
  raws.push(raw);
  await raw.authenticate(await server.token(userId));
  return raw;
}

async function rest(method: string, path: string, userId: string, body?: unknown) {
  const response = await fetch(`${server.http}${path}`, {
    method,
    headers: { authorization: `Bearer ${await server.token(userId)}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as any };
}

async function submit(payload: unknown) {
  const response = await fetch(`${server.http}/dev/activity-events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
  return { status: response.status, body: (await response.json()) as any };
}

beforeAll(async () => {
  fresh = await createFreshDatabase('notif');
  server = await startTestServer({ APP_ENV_DB_URL: fresh.url }, { persistence: 'database' });
  sql = await openDatabase(fresh.url, { poolMax: 1 });
  // Memberships are written by other services; here, by hand.
  await sql.orm.em.getConnection().execute(
    `insert into "PolicyDefinition" (variant, subject_type, subject_id, target_type, target_id, created_at)
     values ('g','user','u-a','merchant','m-1', now()), ('g','user','u-b','merchant','m-1', now()),
            ('g','user','u-x','merchant','m-2', now())`,
  );
});

afterAll(async () => {
  for (const raw of raws) raw.close();
  await server?.running.stop();
  await sql?.close();
  await fresh?.drop();
});

describe('activity event → rows → live push → inbox', () => {
  let pushedId = '';

  it('stores one row per member and pushes it, encrypted, to the recipient only', async () => {
    const recipient = await connect('u-a');
    const outsider = await connect('u-x');
    const submitted = await submit(event);
    expect(submitted).toEqual({ status: 202, body: { created: 2, recipients: 2 } });

    const frame = await recipient.next();
    expect(frame.event).toBe('encrypted');
    const push = recipient.decrypt(frame);
    expect(push.event).toBe(PUSH);
    expect(Object.keys(push.data)).toEqual(['id', 'recipientId', 'actorId', 'type', 'title', 'content', 'html', 'metadata', 'isRead', 'readAt', 'createdAt']);
    expect(push.data).toMatchObject({ recipientId: 'u-a', actorId: 'u-actor', type: 'PAYMENT_SUCCESS', isRead: false, readAt: null });
    expect(push.data.id).toMatch(/^\d+$/);
    expect(push.data.content).toContain('SO-1001');
    expect(push.data.html).toContain('<strong>SO-1001</strong>');
    pushedId = push.data.id;

    const rows = (await sql.orm.em
      .getConnection()
      .execute(`select recipient_id, id::text as id from "ActivityNotification" where event_id = 'e-pay-1' order by recipient_id`)) as Array<{
      recipient_id: string;
      id: string;
    }>;
    expect(rows.map((row) => row.recipient_id)).toEqual(['u-a', 'u-b']);
    expect(rows.find((row) => row.recipient_id === 'u-a')?.id).toBe(pushedId);

    await settle(200);
    expect(outsider.frames.map((each) => each.event)).toEqual(['connected']);
  });

  it('creates nothing and pushes nothing when the same event arrives again', async () => {
    const recipient = raws[0] as RawClient;
    const before = recipient.frames.length;
    expect(await submit(event)).toEqual({ status: 202, body: { created: 0, recipients: 2 } });
    await settle(300);
    expect(recipient.frames.length).toBe(before);
    const counted = (await sql.orm.em.getConnection().execute(`select count(*)::int as n from "ActivityNotification"`)) as Array<{ n: number }>;
    expect(counted[0]?.n).toBe(2);
  });

  it('lists, counts and marks read for the recipient; the REST inbox agrees with the push', async () => {
    const list = await rest('GET', '/notifications', 'u-a');
    expect(list.status).toBe(200);
    expect(list.body.count).toBe(1);
    expect(list.body.items[0].id).toBe(pushedId);
    expect((await rest('GET', '/notifications/count?isRead=false', 'u-a')).body).toEqual({ count: 1 });

    const marked = await rest('PATCH', `/notifications/${pushedId}/mark-read`, 'u-a');
    expect(marked.status).toBe(200);
    expect(marked.body.isRead).toBe(true);
    const readAt = marked.body.readAt;
    expect(typeof readAt).toBe('string');
    const again = await rest('PATCH', `/notifications/${pushedId}/mark-read`, 'u-a');
    expect(again.body.readAt).toBe(readAt);

    expect((await rest('GET', '/notifications/count?isRead=false', 'u-a')).body).toEqual({ count: 0 });
    expect((await rest('GET', '/notifications/count?isRead=true', 'u-a')).body).toEqual({ count: 1 });
    expect((await rest('PATCH', '/notifications/mark-all-read', 'u-b')).body).toEqual({ updated: 1 });
    expect((await rest('PATCH', '/notifications/mark-all-read', 'u-b')).body).toEqual({ updated: 0 });
  });

  it("never shows or changes another user's notification", async () => {
    expect((await rest('GET', '/notifications', 'u-x')).body).toEqual({ count: 0, items: [] });
    expect((await rest('GET', '/notifications/count', 'u-x')).body).toEqual({ count: 0 });
    const foreign = await rest('PATCH', `/notifications/${pushedId}/mark-read`, 'u-x');
    expect(foreign.status).toBe(404);
    expect(foreign.body).toEqual({ code: 'ERR_NOT_FOUND', message: 'notification not found' });
    expect((await rest('PATCH', '/notifications/99999999/mark-read', 'u-x')).status).toBe(404);
  });

  it('refuses bad input with a clear error and loses nothing', async () => {
    const tooMany = await rest('GET', '/notifications?limit=101', 'u-a');
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.message).toMatch(/^limit/);
    expect((await rest('GET', '/notifications?limit=2.5', 'u-a')).body.message).toMatch(/^limit/);
    expect((await rest('GET', '/notifications?offset=-1', 'u-a')).body.message).toMatch(/^offset/);
    expect((await rest('GET', '/notifications?isRead=maybe', 'u-a')).body).toEqual({ code: 'VALIDATION_FAILED', message: 'isRead: must be true or false' });
    expect((await rest('PATCH', '/notifications/not-a-number/mark-read', 'u-a')).body.message).toMatch(/^id/);
    const unauthenticated = await fetch(`${server.http}/notifications`);
    expect(unauthenticated.status).toBe(401);

    const poison = await submit('{"eventId": 5}');
    expect(poison.status).toBe(400);
    expect(poison.body.code).toBe('INVALID_EVENT');
    expect(poison.body.message).toMatch(/eventId/);
    expect((await submit('not json')).status).toBe(400);
  });

  it('falls back to the actor when a merchant has no members', async () => {
    const actor = await connect('lonely-actor');
    const result = await submit({ ...event, eventId: 'e-2', actorId: 'lonely-actor', merchantId: 'm-empty' });
    expect(result.body).toEqual({ created: 1, recipients: 1 });
    const push = await actor.nextMessage();
    expect(push.data.recipientId).toBe('lonely-actor');
  });
});
