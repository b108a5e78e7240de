import type { CloseCode } from '../domain/protocol.ts';

/**
 * A connected client as delivery sees it. `deliver` takes the plaintext
 * frame text, serialised once for all recipients; each connection encrypts
 * it with its own key.
 */
export interface LiveConnection {
  readonly id: string;
  readonly userId: string;
  readonly connectedAt: number;
  /** Epoch ms of the last inbound frame or pong. */
  readonly lastActivity: number;
  readonly encrypted: boolean;
  deliver(frameText: string): void;
  terminate(close: CloseCode): void;
}

/** Told about every registration change, after it happened (presence publishing). */
export interface ConnectionsObserver {
  added(connection: LiveConnection): void;
  changed(connection: LiveConnection): void;
  removed(connection: LiveConnection): void;
}

const EMPTY: ReadonlySet<LiveConnection> = new Set();

/**
 * The clients connected to this instance, indexed by id, user and room.
 * Only connections that finished the handshake are here, so every entry
 * can be delivered to.
 */
export class LocalConnections {
  private readonly byId = new Map<string, LiveConnection>();
  private readonly byUser = new Map<string, Set<LiveConnection>>();
  private readonly byRoom = new Map<string, Set<LiveConnection>>();
  private readonly roomsByClient = new Map<string, Set<string>>();
  private observer: ConnectionsObserver | null = null;

  observe(observer: ConnectionsObserver): void {
    this.observer = observer;
  }

  get size(): number {
    return this.byId.size;
  }

  add(connection: LiveConnection): void {
    this.byId.set(connection.id, connection);
    addTo(this.byUser, connection.userId, connection);
    this.roomsByClient.set(connection.id, new Set());
    this.observer?.added(connection);
  }

  /** Removes the client from every index; unknown clients are ignored. */
  remove(connection: LiveConnection): void {
    if (this.byId.get(connection.id) !== connection) return;
    this.byId.delete(connection.id);
    removeFrom(this.byUser, connection.userId, connection);
    for (const room of this.roomsByClient.get(connection.id) ?? []) removeFrom(this.byRoom, room, connection);
    this.roomsByClient.delete(connection.id);
    this.observer?.removed(connection);
  }

  /** Returns false when the client is not registered here. */
  join(connection: LiveConnection, room: string): boolean {
    const rooms = this.roomsByClient.get(connection.id);
    if (rooms === undefined) return false;
    if (rooms.has(room)) return true;
    rooms.add(room);
    addTo(this.byRoom, room, connection);
    this.observer?.changed(connection);
    return true;
  }

  /** Returns true when the client was in the room. */
  leave(connection: LiveConnection, room: string): boolean {
    const rooms = this.roomsByClient.get(connection.id);
    if (rooms === undefined || !rooms.delete(room)) return false;
    removeFrom(this.byRoom, room, connection);
    this.observer?.changed(connection);
    return true;
  }

  get(clientId: string): LiveConnection | undefined {
    return this.byId.get(clientId);
  }

  ofUser(userId: string): ReadonlySet<LiveConnection> {
    return this.byUser.get(userId) ?? EMPTY;
  }

  inRoom(room: string): ReadonlySet<LiveConnection> {
    return this.byRoom.get(room) ?? EMPTY;
  }

  roomsOf(clientId: string): ReadonlySet<string> {
    return this.roomsByClient.get(clientId) ?? new Set();
  }

  all(): IterableIterator<LiveConnection> {
    return this.byId.values();
  }
}

function addTo(index: Map<string, Set<LiveConnection>>, key: string, connection: LiveConnection): void {
  let set = index.get(key);
  if (set === undefined) {
    set = new Set();
    index.set(key, set);
  }
  set.add(connection);
}

function removeFrom(index: Map<string, Set<LiveConnection>>, key: string, connection: LiveConnection): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(connection);
  // Empty sets would otherwise accumulate one per room name ever used.
  if (set.size === 0) index.delete(key);
}
