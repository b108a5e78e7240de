import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InMemoryNotificationStore } from '../../src/adapters/memory/in-memory-notification-store.ts';
import type { Logger } from '../../src/application/ports/logger.port.ts';
import type { Notification } from '../../src/domain/notification.ts';
import { RawClient } from '../fixtures/raw-client.ts';
import { startTestServer, type TestServer } from '../fixtures/test-server.ts';

/**
 * Every log line written while a request is handled carries its
 * `requestId` (the caller's X-Request-Id, or the one the response got),
 * wherever in the code it is written; lines written outside any request
 * carry none.
 */
interface Line {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

const lines: Line[] = [];

function capture(bindings: Record<string, unknown> = {}): Logger {
  const write = (level: string) => (fields: Record<string, unknown>, message: string) =>
    void lines.push({ level, fields: { ...bindings, ...fields }, message });
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error'), child: (more) => capture({ ...bindings, ...more }) };
}

/** Inbox reads fail as they would with the database down; everything else works. */
class InboxDownStore extends InMemoryNotificationStore {
  override async list(): Promise<{ count: number; items: Notification[] }> {
    throw new Error('connection terminated unexpectedly');
  }
}

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ APP_ENV_LOG_LEVEL: 'debug' }, { logger: capture(), store: new InboxDownStore() });
});

afterAll(async () => {
  await server.running.stop();
});

function submit(eventId: string, requestId?: string): Promise<Response> {
  const event = { eventId, type: 'PAYMENT_SUCCESS', actorId: 'actor', scope: 'users', recipientIds: ['r-1'], data: {} };
  return fetch(`${server.http}/dev/activity-events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(requestId === undefined ? {} : { 'x-request-id': requestId }) },
    body: JSON.stringify(event),
  });
}

const linesAbout = (eventId: string) => lines.filter((line) => line.fields.eventId === eventId);

describe('requestId on log lines', () => {
  it("carries the caller's id into lines written deep in the use case", async () => {
    const response = await submit('rid-1', 'trace-abc-1');
    expect(response.status).toBe(202);
    expect(response.headers.get('x-request-id')).toBe('trace-abc-1');
    const stored = linesAbout('rid-1');
    expect(stored.map((line) => line.message)).toEqual(['event stored']);
    expect(stored[0]!.fields.requestId).toBe('trace-abc-1');
  });

  it('uses the generated id when the caller sent none, the same one the response carries', async () => {
    const response = await submit('rid-2');
    const generated = response.headers.get('x-request-id');
    expect(generated).toMatch(/^[0-9a-f]{16}-[0-9a-z]+$/);
    expect(linesAbout('rid-2')[0]!.fields.requestId).toBe(generated);
  });

  it('keeps concurrent requests apart', async () => {
    const ids = Array.from({ length: 8 }, (_, index) => index);
    await Promise.all(ids.map((index) => submit(`rid-concurrent-${index}`, `trace-concurrent-${index}`)));
    for (const index of ids) expect(linesAbout(`rid-concurrent-${index}`)[0]!.fields.requestId).toBe(`trace-concurrent-${index}`);
  });

  it('is on the error line of a failed request', async () => {
    const response = await fetch(`${server.http}/notifications`, {
      headers: { authorization: `Bearer ${await server.token('inbox-user')}`, 'x-request-id': 'trace-fail-1' },
    });
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ code: 'INTERNAL_ERROR', message: 'internal error' });
    const failed = lines.filter((line) => line.message === 'request failed' && line.fields.requestId === 'trace-fail-1');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.level).toBe('error');
  });

  it('is absent from lines written outside any request', async () => {
    expect(lines.find((line) => line.message === 'listening')?.fields.requestId).toBeUndefined();
    const client = await RawClient.open(server.url);
    try {
      expect((await client.authenticate(await server.token('ws-user'))).event).toBe('connected');
    } finally {
      client.close();
    }
    const connected = lines.filter((line) => line.message === 'client connected' && line.fields.userId === 'ws-user');
    expect(connected).toHaveLength(1);
    expect('requestId' in connected[0]!.fields).toBe(false);
  });
});
