import { describe, expect, it } from 'vitest';
import { routeLabel, UNMATCHED_ROUTE } from '../../src/adapters/metrics/route-label.ts';

const BASE = '/v1/api/signal';

describe('routeLabel', () => {
  it.each([
    [`${BASE}/notifications/:id/mark-read`, '/notifications/:id/mark-read'],
    [`${BASE}/socket/websocket/clients/rooms/:room/send`, '/socket/websocket/clients/rooms/:room/send'],
    [`${BASE}/health`, '/health'],
    [`${BASE}/notifications/`, '/notifications'],
    [`${BASE}/doc/assets/*`, '/doc/assets/*'],
    [BASE, '/'],
    [`${BASE}/`, '/'],
  ])('%s → %s', (template, label) => {
    expect(routeLabel(template, BASE)).toBe(label);
  });

  it('gives every request that matched no route one shared label', () => {
    expect(routeLabel(undefined, BASE)).toBe(UNMATCHED_ROUTE);
    expect(routeLabel('', BASE)).toBe(UNMATCHED_ROUTE);
  });

  it('strips only a whole leading base path segment', () => {
    expect(routeLabel('/v1/api/signalling/x', BASE)).toBe('/v1/api/signalling/x');
    expect(routeLabel('/other/:id', BASE)).toBe('/other/:id');
  });

  it('leaves templates alone under a root base path', () => {
    expect(routeLabel('/notifications/:id/mark-read', '/')).toBe('/notifications/:id/mark-read');
    expect(routeLabel('/', '/')).toBe('/');
  });
});
