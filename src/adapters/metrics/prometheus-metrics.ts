import { Gauge, Histogram, Registry } from 'prom-client';
import type { LiveConnection } from '../../application/local-connections.ts';
import type { DependencyHealth } from '../../application/ports/lifecycle.port.ts';
import type {
  CloseInitiator,
  HandshakeOutcome,
  Metrics,
  OutboundDropReason,
  UpgradeRefusal,
} from '../../application/ports/metrics.port.ts';
import type { BusMessageType } from '../../domain/bus-payload.ts';
import { CloseCodes } from '../../domain/protocol.ts';
import type { KafkaConsumerStats } from '../kafka/kafka-activity-consumer.ts';
import type { KafkaLagSnapshot } from './kafka-lag-probe.ts';
import { registerKafkaMetrics } from './kafka-metrics.ts';
import { labelled, mirroredCounter } from './mirrored-counter.ts';
import { MirroredHistogram, type HistogramSeries } from './mirrored-histogram.ts';
import { registerProcessMetrics } from './process-metrics.ts';

/** Open sockets by where they are in the connection lifecycle. */
export interface ConnectionCounts {
  /** Open sockets not registered as connected: handshaking, or closing. */
  connecting: number;
  authenticated: number;
  encrypted: number;
}

/** Counts registered connections by encryption, and the rest of the open sockets as connecting. */
export function countConnections(registered: Iterable<Pick<LiveConnection, 'encrypted'>>, openSockets: number): ConnectionCounts {
  let encrypted = 0;
  let authenticated = 0;
  for (const connection of registered) {
    if (connection.encrypted) encrypted++;
    else authenticated++;
  }
  return { connecting: Math.max(0, openSockets - encrypted - authenticated), authenticated, encrypted };
}

const KINDS: readonly BusMessageType[] = ['client', 'user', 'room', 'broadcast'];
const SECONDS_PER_MS = 1 / 1000;
/** 0.1 ms to 2.5 s: an in-process hop is sub-millisecond, a Redis round trip a few ms. */
const BUS_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Close codes that get a series of their own: the standard ones (1000-1015)
 * and the server's table. A client may close with any code from 3000 to
 * 4999; those share `other`, so a client cannot mint series.
 */
const KNOWN_CLOSE_CODES: ReadonlySet<number> = new Set([
  ...Array.from({ length: 16 }, (_, index) => 1000 + index),
  ...Object.values(CloseCodes).map((close) => close.code),
]);
const OTHER_CLOSE_CODE = -1;

type PerKind = Record<BusMessageType, number>;
const perKind = (): PerKind => ({ client: 0, user: 0, room: 0, broadcast: 0 });

/** One route and method's requests: counts by status, and its latency histogram. */
interface HttpSeries {
  readonly route: string;
  readonly method: string;
  readonly byStatus: Map<number, number>;
  readonly seconds: HistogramSeries;
}

let processRegistry: Registry | undefined;

/**
 * Process-wide metrics (CPU, memory, event loop, GC) under their standard
 * names, collected once per process: they describe the process, not an
 * instance, and their collectors cannot be stopped, so several instances
 * in one process (tests) share one set.
 */
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    registerProcessMetrics(processRegistry);
  }
  return processRegistry;
}

/**
 * The Metrics port on prom-client, in a Registry of its own (never the
 * global one), so instances in one process do not share counters.
 *
 * Hot-path counters (deliveries, bus traffic, handshakes, closes, HTTP
 * requests) are plain numbers bumped by the port methods and copied into
 * prom-client only when scraped: prom-client hashes label sets on every
 * increment. The HTTP latency histogram is kept the same way
 * (mirrored-histogram.ts). State gauges (connections, readiness, Kafka)
 * are read from their sources at scrape time, so they cannot drift.
 */
export class PrometheusMetrics implements Metrics {
  readonly registry = new Registry();
  readonly #includeProcess: boolean;

  #opened = 0;
  readonly #refused = new Map<UpgradeRefusal, number>();
  readonly #handshakes = new Map<HandshakeOutcome, number>([['ok', 0]]);
  readonly #closes: Record<CloseInitiator, Map<number, number>> = { server: new Map(), client: new Map() };
  readonly #dropped = new Map<OutboundDropReason, number>([['slow_consumer', 0]]);
  readonly #delivered = perKind();
  readonly #published = { ok: perKind(), error: perKind() };
  readonly #received = perKind();
  #created = 0;
  /** route → method → series; both keys come from bounded sets (route templates, HTTP methods seen). */
  readonly #http = new Map<string, Map<string, HttpSeries>>();

  readonly #publishSeconds: Histogram;
  readonly #receiveSeconds: Histogram;
  readonly #httpSeconds: MirroredHistogram;

  #connections: (() => ConnectionCounts) | undefined;
  #readiness: (() => DependencyHealth[]) | undefined;
  #kafka: { topic: string; stats: () => KafkaConsumerStats } | undefined;
  #kafkaLag: (() => KafkaLagSnapshot) | undefined;

  constructor(options: { processMetrics?: boolean } = {}) {
    this.#includeProcess = options.processMetrics ?? true;
    const registry = this.registry;
    const self = this;

    new Gauge({
      name: 'signal_ws_connections',
      help: 'Open WebSocket connections on this instance by state (connecting: handshaking or closing)',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const counts = self.#connections?.() ?? { connecting: 0, authenticated: 0, encrypted: 0 };
        this.set({ state: 'connecting' }, counts.connecting);
        this.set({ state: 'authenticated' }, counts.authenticated);
        this.set({ state: 'encrypted' }, counts.encrypted);
      },
    });
    mirroredCounter(registry, 'signal_ws_connections_opened_total', 'WebSocket upgrades accepted', [], () => [[{}, this.#opened]]);
    mirroredCounter(registry, 'signal_ws_upgrades_refused_total', 'WebSocket upgrades refused on the stream path, by reason', ['reason'], () =>
      labelled(this.#refused, (reason) => ({ reason })),
    );
    mirroredCounter(registry, 'signal_ws_handshakes_total', 'Connection handshakes by outcome (ok, or the reason it failed)', ['outcome'], () =>
      labelled(this.#handshakes, (outcome) => ({ outcome })),
    );
    mirroredCounter(registry, 'signal_ws_closes_total', 'Closed connections by close code and by who closed', ['code', 'initiator'], () => [
      ...labelled(this.#closes.server, (code) => ({ code: closeLabel(code), initiator: 'server' })),
      ...labelled(this.#closes.client, (code) => ({ code: closeLabel(code), initiator: 'client' })),
    ]);
    mirroredCounter(registry, 'signal_ws_outbound_dropped_total', 'Outbound frames dropped, by reason (slow_consumer: the client was closed with 4005)', ['reason'], () =>
      labelled(this.#dropped, (reason) => ({ reason })),
    );
    mirroredCounter(registry, 'signal_ws_messages_delivered_total', 'Messages handed to local connections, by kind (one per recipient connection)', ['kind'], () =>
      KINDS.map((kind) => [{ kind }, this.#delivered[kind]] as const),
    );
    mirroredCounter(registry, 'signal_bus_published_total', 'Messages published on the bus, by type and result', ['type', 'result'], () =>
      KINDS.flatMap((type) => [
        [{ type, result: 'ok' }, this.#published.ok[type]] as const,
        [{ type, result: 'error' }, this.#published.error[type]] as const,
      ]),
    );
    this.#publishSeconds = new Histogram({
      name: 'signal_bus_publish_duration_seconds',
      help: 'Time for the bus to accept a publish (Redis round trip)',
      buckets: BUS_BUCKETS,
      registers: [registry],
    });
    mirroredCounter(registry, 'signal_bus_received_total', 'Messages received from other instances on the bus, by type', ['type'], () =>
      KINDS.map((type) => [{ type }, this.#received[type]] as const),
    );
    this.#receiveSeconds = new Histogram({
      name: 'signal_bus_receive_handling_seconds',
      help: 'Time spent handling a received bus message (the payload has no timestamp, so transit lag is not measurable)',
      buckets: BUS_BUCKETS,
      registers: [registry],
    });
    mirroredCounter(registry, 'signal_notifications_created_total', 'Notifications stored by the pipeline (one per recipient, each pushed once)', [], () => [
      [{}, this.#created],
    ]);
    mirroredCounter(registry, 'signal_http_requests_total', 'HTTP requests by route template, method and status', ['route', 'method', 'status'], () =>
      [...this.#http.values()].flatMap((byMethod) =>
        [...byMethod.values()].flatMap(({ route, method, byStatus }) =>
          [...byStatus].map(([status, count]) => [{ route, method, status: String(status) }, count] as const),
        ),
      ),
    );
    this.#httpSeconds = new MirroredHistogram({
      name: 'signal_http_request_duration_seconds',
      help: 'HTTP request duration by route template and method',
      buckets: HTTP_BUCKETS,
      registers: [registry],
    });
    new Gauge({
      name: 'signal_dependency_ready',
      help: 'Whether each dependency is ready (1) or not (0), as /ready reports it',
      labelNames: ['dependency'],
      registers: [registry],
      collect() {
        this.reset();
        for (const dependency of self.#readiness?.() ?? []) this.set({ dependency: dependency.name }, dependency.ready ? 1 : 0);
      },
    });
    registerKafkaMetrics(registry, {
      consumer: () => (this.#kafka === undefined ? undefined : { topic: this.#kafka.topic, stats: this.#kafka.stats() }),
      lag: () => this.#kafkaLag?.(),
    });
  }

  /** Where the connections gauge reads from when scraped. */
  watchConnections(read: () => ConnectionCounts): void {
    this.#connections = read;
  }

  watchReadiness(read: () => DependencyHealth[]): void {
    this.#readiness = read;
  }

  watchKafka(topic: string, stats: () => KafkaConsumerStats): void {
    this.#kafka = { topic, stats };
  }

  watchKafkaLag(read: () => KafkaLagSnapshot): void {
    this.#kafkaLag = read;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition: this instance's metrics, then the process's. */
  async render(): Promise<string> {
    const own = await this.registry.metrics();
    return this.#includeProcess ? `${own}\n${await processMetrics().metrics()}` : own;
  }

  connectionOpened(): void {
    this.#opened++;
  }

  upgradeRefused(reason: UpgradeRefusal): void {
    bump(this.#refused, reason, 1);
  }

  handshake(outcome: HandshakeOutcome): void {
    bump(this.#handshakes, outcome, 1);
  }

  closed(code: number, initiator: CloseInitiator): void {
    bump(this.#closes[initiator], KNOWN_CLOSE_CODES.has(code) ? code : OTHER_CLOSE_CODE, 1);
  }

  outboundDropped(reason: OutboundDropReason): void {
    bump(this.#dropped, reason, 1);
  }

  delivered(kind: BusMessageType, count: number): void {
    this.#delivered[kind] += count;
  }

  busPublished(type: BusMessageType, ok: boolean, durationMs: number): void {
    (ok ? this.#published.ok : this.#published.error)[type]++;
    this.#publishSeconds.observe(durationMs * SECONDS_PER_MS);
  }

  busReceived(type: BusMessageType, handlingMs: number): void {
    this.#received[type]++;
    this.#receiveSeconds.observe(handlingMs * SECONDS_PER_MS);
  }

  notificationsCreated(count: number): void {
    this.#created += count;
  }

  httpRequest(route: string, method: string, status: number, durationMs: number): void {
    let byMethod = this.#http.get(route);
    if (byMethod === undefined) this.#http.set(route, (byMethod = new Map()));
    let series = byMethod.get(method);
    if (series === undefined) {
      series = { route, method, byStatus: new Map(), seconds: this.#httpSeconds.series({ route, method }) };
      byMethod.set(method, series);
    }
    bump(series.byStatus, status, 1);
    series.seconds.observe(durationMs * SECONDS_PER_MS);
  }
}

function closeLabel(code: number): string {
  return code === OTHER_CLOSE_CODE ? 'other' : String(code);
}

function bump<K>(map: Map<K, number>, key: K, by: number): void {
  map.set(key, (map.get(key) ?? 0) + by);
}
