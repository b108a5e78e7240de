import type { ActivityEvent } from './activity-event.ts';

/**
 * Who receives an activity event (contract: "Recipients"). Looking members
 * up is I/O and belongs to the caller; this file only says what to look up
 * and how to turn the answer into the final list.
 */

export interface MembershipTarget {
  target: 'merchant' | 'organizer';
  id: string;
}

/**
 * What the caller must look up before `resolveRecipients`, or null when the
 * event names its recipients itself (scope 'users'). `parseActivityEvent`
 * guarantees the id for organizer and merchant scopes; an event built by
 * hand without it gets null, and then falls back to the actor.
 */
export function membershipTarget(event: ActivityEvent): MembershipTarget | null {
  if (event.scope === 'organizer' && event.organizerId !== undefined) {
    return { target: 'organizer', id: event.organizerId };
  }
  if (event.scope === 'merchant' && event.merchantId !== undefined) {
    return { target: 'merchant', id: event.merchantId };
  }
  return null;
}

/**
 * The recipients, each once, in first-seen order. `members` is the caller's
 * answer for `membershipTarget(event)` and is ignored for scope 'users'.
 * Nobody found means the actor is told: an event must never vanish
 * silently. The actor is not removed when listed: acting on one's own
 * merchant still deserves the receipt.
 */
export function resolveRecipients(event: ActivityEvent, members: readonly string[]): string[] {
  const candidates = event.scope === 'users' ? event.recipientIds : members;
  const seen = new Set<string>();
  const recipients: string[] = [];
  for (const id of candidates) {
    // An empty id would be a row addressed to nobody.
    if (id.length === 0 || seen.has(id)) continue;
    seen.add(id);
    recipients.push(id);
  }
  return recipients.length > 0 ? recipients : [event.actorId];
}
