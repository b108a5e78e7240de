import { describe, expect, it } from 'vitest';
import { countConnections, PrometheusMetrics } from '../../src/adapters/metrics/prometheus-metrics.ts';
import { parseExposition, series, total } from '../fixtures/prometheus-text.ts';

const scrape = async (metrics: PrometheusMetrics) => parseExposition(await metrics.render());

describe('countConnections', () => {
  it('splits registered connections by encryption and counts the other open sockets as connecting', () => {
    const registered = [{ encrypted: true }, { encrypted: true }, { encrypted: false }];
    expect(countConnections(registered, 5)).toEqual({ connecting: 2, authenticated: 1, encrypted: 2 });
  });

  it('never reports a negative number connecting (a socket closing while registered)', () => {
    expect(countConnections([{ encrypted: true }], 0)).toEqual({ connecting: 0, authenticated: 0, encrypted: 1 });
  });
});

describe('PrometheusMetrics', () => {
  it('adds up what it is told, by label', async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    metrics.delivered('user', 3);
    metrics.delivered('user', 2);
    metrics.delivered('room', 0);
    metrics.handshake('ok');
    metrics.handshake('jwks_unavailable');
    metrics.handshake('jwks_unavailable');
    metrics.closed(4005, 'server');
    metrics.closed(1001, 'server');
    metrics.closed(1001, 'client');
    metrics.outboundDropped('slow_consumer');
    metrics.busPublished('room', true, 2);
    metrics.busPublished('room', false, 2_000);
    metrics.busReceived('broadcast', 0.3);
    metrics.notificationsCreated(4);
    metrics.upgradeRefused('capacity');
    const scraped = await scrape(metrics);

    expect(total(scraped, 'signal_ws_messages_delivered_total', { kind: 'user' })).toBe(5);
    expect(total(scraped, 'signal_ws_messages_delivered_total', { kind: 'room' })).toBe(0);
    expect(total(scraped, 'signal_ws_handshakes_total', { outcome: 'ok' })).toBe(1);
    expect(total(scraped, 'signal_ws_handshakes_total', { outcome: 'jwks_unavailable' })).toBe(2);
    expect(total(scraped, 'signal_ws_closes_total', { code: '1001', initiator: 'server' })).toBe(1);
    expect(total(scraped, 'signal_ws_closes_total', { code: '1001', initiator: 'client' })).toBe(1);
    expect(total(scraped, 'signal_ws_closes_total', { code: '4005' })).toBe(1);
    expect(total(scraped, 'signal_ws_outbound_dropped_total', { reason: 'slow_consumer' })).toBe(1);
    expect(total(scraped, 'signal_bus_published_total', { type: 'room', result: 'ok' })).toBe(1);
    expect(total(scraped, 'signal_bus_published_total', { type: 'room', result: 'error' })).toBe(1);
    // Durations are reported in seconds: 2 ms and 2 s.
    expect(total(scraped, 'signal_bus_publish_duration_seconds_sum')).toBeCloseTo(2.002);
    expect(total(scraped, 'signal_bus_publish_duration_seconds_bucket', { le: '0.0025' })).toBe(1);
    expect(total(scraped, 'signal_bus_received_total', { type: 'broadcast' })).toBe(1);
    expect(total(scraped, 'signal_notifications_created_total')).toBe(4);
    expect(total(scraped, 'signal_ws_upgrades_refused_total', { reason: 'capacity' })).toBe(1);
  });

  it('puts close codes outside the standard and server tables under one label', async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    for (const code of [3000, 3999, 4321, 4999]) metrics.closed(code, 'client');
    metrics.closed(4008, 'server');
    const scraped = await scrape(metrics);
    expect(series(scraped, 'signal_ws_closes_total').map((sample) => [sample.labels.code, sample.labels.initiator, sample.value])).toEqual([
      ['4008', 'server', 1],
      ['other', 'client', 4],
    ]);
  });

  it('keeps counting across scrapes (a scrape resets nothing)', async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    metrics.delivered('broadcast', 7);
    await scrape(metrics);
    metrics.delivered('broadcast', 1);
    expect(total(await scrape(metrics), 'signal_ws_messages_delivered_total', { kind: 'broadcast' })).toBe(8);
  });

  it('keeps instances apart: each has its own registry', async () => {
    const first = new PrometheusMetrics({ processMetrics: false });
    const second = new PrometheusMetrics({ processMetrics: false });
    first.handshake('ok');
    expect(total(await scrape(first), 'signal_ws_handshakes_total', { outcome: 'ok' })).toBe(1);
    expect(total(await scrape(second), 'signal_ws_handshakes_total', { outcome: 'ok' })).toBe(0);
  });

  it('reads state gauges from their sources at scrape time', async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    let counts = { connecting: 1, authenticated: 2, encrypted: 3 };
    let ready = true;
    metrics.watchConnections(() => counts);
    metrics.watchReadiness(() => [
      { name: 'redis', ready },
      { name: 'database', ready: true },
    ]);
    let scraped = await scrape(metrics);
    expect(total(scraped, 'signal_ws_connections', { state: 'encrypted' })).toBe(3);
    expect(total(scraped, 'signal_dependency_ready', { dependency: 'redis' })).toBe(1);

    counts = { connecting: 0, authenticated: 0, encrypted: 9 };
    ready = false;
    scraped = await scrape(metrics);
    expect(total(scraped, 'signal_ws_connections')).toBe(9);
    expect(total(scraped, 'signal_dependency_ready', { dependency: 'redis' })).toBe(0);
    expect(total(scraped, 'signal_dependency_ready', { dependency: 'database' })).toBe(1);
  });

  it("exposes Kafka's counters from the consumer's stats, and nothing Kafka without a consumer", async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    expect(series(await scrape(metrics), 'signal_kafka_messages_processed_total')).toEqual([]);
    let processed = 10;
    metrics.watchKafka('activity', () => ({ processed, poison: 2, failures: 5, restarts: 1, lastCommittedOffset: { 0: '11', 3: '40' } }));
    let scraped = await scrape(metrics);
    expect(total(scraped, 'signal_kafka_messages_processed_total', { topic: 'activity' })).toBe(10);
    expect(total(scraped, 'signal_kafka_messages_poison_total', { topic: 'activity' })).toBe(2);
    expect(total(scraped, 'signal_kafka_processing_failures_total', { topic: 'activity' })).toBe(5);
    expect(total(scraped, 'signal_kafka_consumer_restarts_total', { topic: 'activity' })).toBe(1);
    expect(series(scraped, 'signal_kafka_committed_offset').map((sample) => [sample.labels.partition, sample.value])).toEqual([
      ['0', 11],
      ['3', 40],
    ]);
    processed = 12;
    scraped = await scrape(metrics);
    expect(total(scraped, 'signal_kafka_messages_processed_total', { topic: 'activity' })).toBe(12);
  });

  it('labels HTTP requests by route, method and status, and observes their duration in seconds', async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    metrics.httpRequest('/notifications/:id/mark-read', 'PATCH', 404, 12);
    metrics.httpRequest('/notifications/:id/mark-read', 'PATCH', 200, 8);
    const scraped = await scrape(metrics);
    expect(total(scraped, 'signal_http_requests_total', { route: '/notifications/:id/mark-read', method: 'PATCH', status: '404' })).toBe(1);
    expect(total(scraped, 'signal_http_requests_total', { route: '/notifications/:id/mark-read' })).toBe(2);
    expect(total(scraped, 'signal_http_request_duration_seconds_sum', { route: '/notifications/:id/mark-read' })).toBeCloseTo(0.02);
  });

  it('appends the process metrics unless told not to', async () => {
    const withProcess = await scrape(new PrometheusMetrics());
    expect(withProcess.types.get('process_resident_memory_bytes') ?? withProcess.types.get('process_cpu_seconds_total')).toBeDefined();
    const without = await scrape(new PrometheusMetrics({ processMetrics: false }));
    expect([...without.types.keys()].every((name) => name.startsWith('signal_'))).toBe(true);
  });
});
