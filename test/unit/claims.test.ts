import { describe, expect, it } from 'vitest';
import { identityFromClaims } from '../../src/domain/claims.ts';

describe('identityFromClaims', () => {
  it('reads every claim the service uses', () => {
    expect(
      identityFromClaims({
        sub: 'sub-1',
        userId: 'u-1',
        roles: [{ id: 'r-1', identifier: 'ADMIN', priority: 5 }],
        email: 'u1@example.test',
        name: 'User One',
        exp: 1_900_000_000,
      }),
    ).toEqual({
      userId: 'u-1',
      roles: [{ id: 'r-1', identifier: 'ADMIN', priority: 5 }],
      email: 'u1@example.test',
      name: 'User One',
      expiresAt: 1_900_000_000_000,
    });
  });

  it('falls back to sub when userId is absent or unusable', () => {
    expect(identityFromClaims({ sub: 's-1' })?.userId).toBe('s-1');
    expect(identityFromClaims({ sub: 's-1', userId: '' })?.userId).toBe('s-1');
    expect(identityFromClaims({ sub: 's-1', userId: '   ' })?.userId).toBe('s-1');
    expect(identityFromClaims({ sub: 's-1', userId: { id: 1 } })?.userId).toBe('s-1');
    expect(identityFromClaims({ sub: 's-1', userId: null })?.userId).toBe('s-1');
  });

  it('turns a numeric userId into a string, but not one past the safe-integer range', () => {
    expect(identityFromClaims({ userId: 12345 })?.userId).toBe('12345');
    expect(identityFromClaims({ userId: 0 })?.userId).toBe('0');
    // 2^53 + 1 has already been rounded by JSON.parse: it must not name a user.
    expect(identityFromClaims({ userId: 9007199254740993 })).toBeNull();
    expect(identityFromClaims({ userId: 1.5, sub: 's' })?.userId).toBe('s');
    expect(identityFromClaims({ userId: Number.NaN })).toBeNull();
  });

  it('is null when there is no usable user id at all', () => {
    expect(identityFromClaims({})).toBeNull();
    expect(identityFromClaims({ sub: '' })).toBeNull();
    expect(identityFromClaims({ sub: 42, roles: [] })?.userId).toBe('42');
    expect(identityFromClaims({ userId: true, sub: ['x'] })).toBeNull();
  });

  it('has no roles when the claim is absent or not a list', () => {
    expect(identityFromClaims({ sub: 's' })?.roles).toEqual([]);
    expect(identityFromClaims({ sub: 's', roles: 'ADMIN' })?.roles).toEqual([]);
    expect(identityFromClaims({ sub: 's', roles: { id: 1, identifier: 'ADMIN' } })?.roles).toEqual([]);
  });

  it('tolerates numeric role ids and a missing priority, and drops malformed entries', () => {
    const roles = identityFromClaims({
      sub: 's',
      roles: [
        { id: 3, identifier: 'ADMIN', priority: 1 },
        { id: 'r-2', identifier: 'USER' },
        { id: 'r-3', identifier: 'VIEWER', priority: null },
        { id: 'r-4', identifier: 'OPS', priority: '7' },
        { identifier: 'NO_ID' },
        { id: 'r-5' },
        { id: 'r-6', identifier: '' },
        { id: {}, identifier: 'BAD_ID' },
        { id: 'r-7', identifier: 'BAD_PRIORITY', priority: 'high' },
        { id: 'r-8', identifier: 'INF', priority: Number.POSITIVE_INFINITY },
        'ADMIN',
        null,
        [1, 'ADMIN', 0],
      ],
    })?.roles;
    expect(roles).toEqual([
      { id: '3', identifier: 'ADMIN', priority: 1 },
      { id: 'r-2', identifier: 'USER', priority: 0 },
      { id: 'r-3', identifier: 'VIEWER', priority: 0 },
      { id: 'r-4', identifier: 'OPS', priority: 7 },
    ]);
  });

  it('keeps only string email and name, and only a numeric exp', () => {
    const identity = identityFromClaims({ sub: 's', email: 42, name: { first: 'x' }, exp: '1900000000' });
    expect(identity).toEqual({ userId: 's', roles: [] });
    expect(identity).not.toHaveProperty('email');
    expect(identity).not.toHaveProperty('expiresAt');
  });

  it('never carries unrelated claims into the identity', () => {
    const identity = identityFromClaims({ sub: 's', password: 'p', token: 't', iat: 1 });
    expect(Object.keys(identity ?? {}).sort()).toEqual(['roles', 'userId']);
  });
});
