import { describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/activity-event.ts';
import { membershipTarget, resolveRecipients } from '../../src/domain/recipients.ts';

function event(overrides: Partial<ActivityEvent>): ActivityEvent {
  return { eventId: 'e-1', type: 'T', actorId: 'actor', scope: 'users', recipientIds: [], data: {}, ...overrides };
}

describe('membershipTarget', () => {
  it('asks for the members of the merchant or organizer the scope names', () => {
    expect(membershipTarget(event({ scope: 'merchant', merchantId: 'm-1', organizerId: 'o-1' }))).toEqual({ target: 'merchant', id: 'm-1' });
    expect(membershipTarget(event({ scope: 'organizer', merchantId: 'm-1', organizerId: 'o-1' }))).toEqual({ target: 'organizer', id: 'o-1' });
  });

  it('asks for nothing when the event names its recipients or lacks the id', () => {
    expect(membershipTarget(event({ scope: 'users', merchantId: 'm-1', recipientIds: ['u'] }))).toBeNull();
    expect(membershipTarget(event({ scope: 'merchant' }))).toBeNull();
  });
});

describe('resolveRecipients', () => {
  it('uses the looked-up members for merchant and organizer scopes', () => {
    const merchant = event({ scope: 'merchant', merchantId: 'm-1', recipientIds: ['ignored'] });
    expect(resolveRecipients(merchant, ['u-1', 'u-2'])).toEqual(['u-1', 'u-2']);
    const organizer = event({ scope: 'organizer', organizerId: 'o-1', recipientIds: ['ignored'] });
    expect(resolveRecipients(organizer, ['u-3'])).toEqual(['u-3']);
  });

  it('uses the explicit recipients for scope users and ignores members', () => {
    expect(resolveRecipients(event({ recipientIds: ['u-2', 'u-1'] }), ['m-9'])).toEqual(['u-2', 'u-1']);
  });

  it('removes duplicates keeping first-seen order', () => {
    expect(resolveRecipients(event({ recipientIds: ['b', 'a', 'b', 'c', 'a'] }), [])).toEqual(['b', 'a', 'c']);
    expect(resolveRecipients(event({ scope: 'merchant', merchantId: 'm' }), ['x', 'y', 'x'])).toEqual(['x', 'y']);
  });

  it('falls back to the actor when nobody is found', () => {
    expect(resolveRecipients(event({ scope: 'merchant', merchantId: 'm' }), [])).toEqual(['actor']);
    expect(resolveRecipients(event({ recipientIds: [] }), ['member'])).toEqual(['actor']);
    expect(resolveRecipients(event({ recipientIds: [''] }), [])).toEqual(['actor']);
  });

  it('keeps the actor when listed, once', () => {
    expect(resolveRecipients(event({ scope: 'organizer', organizerId: 'o' }), ['u-1', 'actor', 'actor'])).toEqual(['u-1', 'actor']);
  });

  it('does not modify the inputs', () => {
    const recipientIds = ['a', 'a'];
    const members = ['m', 'm'] as const;
    resolveRecipients(event({ recipientIds }), members);
    expect(recipientIds).toEqual(['a', 'a']);
    expect(members).toEqual(['m', 'm']);
  });
});
