import { describe, expect, it } from 'vitest';
import { DEFAULT_ROOM_RULES, evaluateRoom, looksLikeClientId, roomsFromFrame } from '../../src/domain/room-policy.ts';

const rules = DEFAULT_ROOM_RULES;

describe('room policy', () => {
  it('admits the default rooms to everyone', () => {
    expect(evaluateRoom('ws-default', 'u1', rules)).toEqual({ kind: 'allow' });
    expect(evaluateRoom('ws-notification', 'u1', rules)).toEqual({ kind: 'allow' });
  });

  it('never admits a name starting with ws:', () => {
    expect(evaluateRoom('ws:x', 'u1', rules)).toEqual({ kind: 'deny', reason: 'reserved' });
    expect(evaluateRoom('ws:broadcast', 'u1', { ...rules, allowPatterns: [/.*/] })).toEqual({ kind: 'deny', reason: 'reserved' });
  });

  it('never admits a name in the client-id format, whatever the allow-list says', () => {
    const id = 'f47ac10b-58cc-4372-a567-0e02b2c3d479';
    expect(looksLikeClientId(id)).toBe(true);
    expect(looksLikeClientId(id.toUpperCase())).toBe(true);
    expect(evaluateRoom(id, 'u1', { ...rules, allowPatterns: [/.*/] })).toEqual({ kind: 'deny', reason: 'client-id' });
    expect(looksLikeClientId('f47ac10b-58cc-4372-a567-0e02b2c3d47')).toBe(false);
  });

  it('admits user:<id> only to that user', () => {
    expect(evaluateRoom('user:u1', 'u1', rules)).toEqual({ kind: 'allow' });
    expect(evaluateRoom('user:u2', 'u1', rules)).toEqual({ kind: 'deny', reason: 'other-user' });
  });

  it('asks for membership for merchant and organizer rooms', () => {
    expect(evaluateRoom('merchant:42', 'u1', rules)).toEqual({ kind: 'needs-membership', target: 'merchant', targetId: '42' });
    expect(evaluateRoom('organizer:o-1', 'u1', rules)).toEqual({ kind: 'needs-membership', target: 'organizer', targetId: 'o-1' });
    expect(evaluateRoom('merchant:', 'u1', rules)).toEqual({ kind: 'deny', reason: 'not-allowed' });
  });

  it('rejects names that are empty, too long or not strings', () => {
    expect(evaluateRoom('', 'u1', rules)).toEqual({ kind: 'deny', reason: 'invalid-name' });
    expect(evaluateRoom('x'.repeat(257), 'u1', { ...rules, allowPatterns: [/.*/] })).toEqual({ kind: 'deny', reason: 'invalid-name' });
    expect(evaluateRoom('x'.repeat(256), 'u1', { ...rules, allowPatterns: [/x+/] })).toEqual({ kind: 'allow' });
    expect(evaluateRoom(42, 'u1', rules)).toEqual({ kind: 'deny', reason: 'invalid-name' });
  });

  it('rejects everything else unless an allow-list pattern matches the whole name', () => {
    expect(evaluateRoom('lobby', 'u1', rules)).toEqual({ kind: 'deny', reason: 'not-allowed' });
    const withPattern = { ...rules, allowPatterns: [/^public:[a-z]+$/, /event-\d+/g] };
    expect(evaluateRoom('public:news', 'u1', withPattern)).toEqual({ kind: 'allow' });
    expect(evaluateRoom('public:news!', 'u1', withPattern)).toEqual({ kind: 'deny', reason: 'not-allowed' });
    // A partial match is not a match, and a global regexp gives the same answer twice.
    expect(evaluateRoom('xevent-1', 'u1', withPattern)).toEqual({ kind: 'deny', reason: 'not-allowed' });
    expect(evaluateRoom('event-1', 'u1', withPattern)).toEqual({ kind: 'allow' });
    expect(evaluateRoom('event-1', 'u1', withPattern)).toEqual({ kind: 'allow' });
  });

  it('reads the rooms list of a join or leave frame', () => {
    expect(roomsFromFrame({ rooms: ['a', 1] })).toEqual(['a', 1]);
    expect(roomsFromFrame({ rooms: 'a' })).toBeNull();
    expect(roomsFromFrame(null)).toBeNull();
  });
});
