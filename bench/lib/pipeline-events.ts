/**
 * The activity events of the pipeline scenario, built the same way for the
 * Kafka producer (signal's side) and for the limit's INSERTs, so that both
 * store rows of the same content: a PAYMENT_SUCCESS for one merchant, with
 * an order code and an amount that vary per event, as publishers send it.
 */
export const MERCHANT_ID = 'bench-merchant-50';
export const ACTOR_ID = 'bench-actor';
export const MEMBER_COUNT = 50;

export function memberIds(count = MEMBER_COUNT): string[] {
  return Array.from({ length: count }, (_, index) => `bench-member-${String(index).padStart(2, '0')}`);
}

/** Event ids of one round: `<prefix><index>`; the prefix names the run and the round. */
export function eventId(prefix: string, index: number): string {
  return `${prefix}${index}`;
}

export function paymentEvent(id: string, index: number): Record<string, unknown> {
  return {
    eventId: id,
    type: 'PAYMENT_SUCCESS',
    actorId: ACTOR_ID,
    scope: 'merchant',
    merchantId: MERCHANT_ID,
    occurredAt: new Date(Date.UTC(2026, 10, 21, 10, 0, 0) + index * 1000).toISOString(),
    data: { orderCode: `SO-2026-${String(100_000 + index)}`, amount: 250_000 + (index % 1000) * 1000, currency: 'VND' },
  };
}
