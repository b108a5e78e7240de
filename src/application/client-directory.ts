import { NotFoundError, SignalError } from '../domain/errors.ts';
import { CloseCodes } from '../domain/protocol.ts';
import type { ConnectionsObserver, LiveConnection, LocalConnections } from './local-connections.ts';
import type { Clock } from './ports/clock.port.ts';
import type { ControlChannel, ControlCommand } from './ports/control-channel.port.ts';
import type { Logger } from './ports/logger.port.ts';
import type { ClientRecord, PresencePage, PresenceQuery, PresenceRegistry } from './ports/presence-registry.port.ts';

/** How long a looked-up instance count is answered without asking the registry again. */
export const INSTANCE_COUNT_FRESH_MS = 1_000;

/**
 * Every client of the cluster, as operators see it: this instance publishes
 * its own clients to the presence registry and obeys disconnect commands
 * addressed to it; queries read the registry, so they cover all instances.
 *
 * Presence is eventually consistent: a record follows its connection by a
 * registry round trip, and a crashed instance's records vanish within the
 * registry's TTL. Registry writes that fail are logged and repaired by the
 * next heartbeat, which rewrites this instance's records when needed.
 */
export class ClientDirectory implements ConnectionsObserver {
  private readonly dirty = new Set<LiveConnection>();
  private flushScheduled = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private heartbeatRunning = false;
  private knownInstances: { count: number; at: number } | null = null;
  private instanceLookup: Promise<number> | null = null;

  constructor(
    private readonly registry: PresenceRegistry,
    private readonly control: ControlChannel,
    private readonly connections: LocalConnections,
    private readonly instanceId: string,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** First heartbeat (so records become visible), periodic heartbeats, and the control subscription. */
  async start(heartbeatIntervalMs: number): Promise<void> {
    await this.control.subscribe(this.instanceId, (command) => this.obey(command));
    await this.heartbeat();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  stop(): void {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  added(connection: LiveConnection): void {
    this.markDirty(connection);
  }

  changed(connection: LiveConnection): void {
    this.markDirty(connection);
  }

  removed(connection: LiveConnection): void {
    this.dirty.delete(connection);
    this.registry.remove(connection.id).catch((error: unknown) => this.writeFailed(error, connection.id));
  }

  find(query: PresenceQuery): Promise<PresencePage> {
    return this.registry.find(query);
  }

  /** The record, or NotFoundError. */
  async get(clientId: string): Promise<ClientRecord> {
    const local = this.connections.get(clientId);
    if (local !== undefined) return this.recordOf(local);
    const record = await this.registry.get(clientId);
    if (record === null) throw new NotFoundError('client');
    return record;
  }

  /** Closes the client with 4008 on whichever instance holds it; NotFoundError when none does. */
  async disconnect(clientId: string, requestedBy: string): Promise<{ instanceId: string }> {
    const local = this.connections.get(clientId);
    if (local !== undefined) {
      this.logger.info({ clientId, requestedBy, code: CloseCodes.disconnectedByServer.code }, 'operator disconnect');
      local.terminate(CloseCodes.disconnectedByServer);
      return { instanceId: this.instanceId };
    }
    const record = await this.registry.get(clientId);
    if (record === null) throw new NotFoundError('client');
    await this.control.send(record.instanceId, { type: 'disconnect', clientId, requestedBy });
    return { instanceId: record.instanceId };
  }

  /**
   * Live instances of the cluster. A count looked up less than
   * INSTANCE_COUNT_FRESH_MS ago is returned as it is, without a promise;
   * otherwise one registry lookup runs, shared by every caller that asks
   * while it is under way. However often the status route is polled (load
   * balancers, dashboards), the registry sees at most one lookup a second
   * from it, and a poll within that second answers without waiting. A
   * failed lookup is not kept: the next call tries again.
   */
  instanceCount(): number | Promise<number> {
    const known = this.knownInstances;
    if (known !== null && this.clock.now() - known.at < INSTANCE_COUNT_FRESH_MS) return known.count;
    return (this.instanceLookup ??= this.lookUpInstances());
  }

  private async lookUpInstances(): Promise<number> {
    try {
      const count = (await this.registry.instances()).length;
      this.knownInstances = { count, at: this.clock.now() };
      return count;
    } finally {
      this.instanceLookup = null;
    }
  }

  private obey(command: ControlCommand): void {
    const connection = this.connections.get(command.clientId);
    if (connection === undefined) return;
    this.logger.info({ clientId: command.clientId, requestedBy: command.requestedBy, code: CloseCodes.disconnectedByServer.code }, 'operator disconnect');
    connection.terminate(CloseCodes.disconnectedByServer);
  }

  private async heartbeat(): Promise<void> {
    if (this.heartbeatRunning) return;
    this.heartbeatRunning = true;
    try {
      const connections = this.connections;
      await this.registry.heartbeat(this.instanceId, {
        count: connections.size,
        records: () => [...connections.all()].map((connection) => this.recordOf(connection)),
      });
    } catch (error) {
      this.logger.warn({ code: codeOf(error) }, 'presence heartbeat failed');
    } finally {
      this.heartbeatRunning = false;
    }
  }

  /** Joins and leaves come in bursts; one write per connection per tick is enough. */
  private markDirty(connection: LiveConnection): void {
    this.dirty.add(connection);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const batch = [...this.dirty];
      this.dirty.clear();
      for (const each of batch) {
        if (this.connections.get(each.id) !== each) continue;
        this.registry.upsert(this.recordOf(each)).catch((error: unknown) => this.writeFailed(error, each.id));
      }
    });
  }

  private recordOf(connection: LiveConnection): ClientRecord {
    return {
      id: connection.id,
      userId: connection.userId,
      instanceId: this.instanceId,
      state: connection.encrypted ? 'ENCRYPTED' : 'AUTHENTICATED',
      rooms: [...this.connections.roomsOf(connection.id)],
      encrypted: connection.encrypted,
      connectedAt: new Date(connection.connectedAt).toISOString(),
      lastActivity: new Date(Math.min(connection.lastActivity, this.clock.now())).toISOString(),
    };
  }

  private writeFailed(error: unknown, clientId: string): void {
    this.logger.warn({ clientId, code: codeOf(error) }, 'presence write failed; the next heartbeat repairs it');
  }
}

function codeOf(error: unknown): string {
  return error instanceof SignalError ? error.code : 'ERR_UNEXPECTED';
}
