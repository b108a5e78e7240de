/**
 * Reading what the server sends: frame bytes to text, and the payloads of
 * `connected`, `joined` and `left` to the SDK's shapes. Lenient where the
 * protocol lets the server add fields, strict where a wrong type would
 * poison the session.
 */
import type { Frame } from '../../domain/protocol.ts';
import type { ConnectedInfo, RoomsResult } from './client-types.ts';

export async function decodeText(raw: unknown): Promise<string> {
  if (typeof raw === 'string') return raw;
  // Binary frames are UTF-8 text too (§1).
  if (raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) return new TextDecoder().decode(raw);
  if (typeof Blob !== 'undefined' && raw instanceof Blob) return raw.text();
  return '';
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseConnectedInfo(data: unknown): ConnectedInfo | null {
  if (!isRecord(data) || typeof data.id !== 'string') return null;
  const { serverPublicKey, salt } = data;
  if (serverPublicKey !== undefined && typeof serverPublicKey !== 'string') return null;
  if (salt !== undefined && typeof salt !== 'string') return null;
  const info: ConnectedInfo = {
    clientId: data.id,
    userId: data.userId === undefined || data.userId === null ? '' : String(data.userId),
    time: typeof data.time === 'string' ? data.time : '',
  };
  if (serverPublicKey !== undefined) info.serverPublicKey = serverPublicKey;
  if (salt !== undefined) info.salt = salt;
  return info;
}

/** The server puts the request id in `data.id`; a top-level `id` is accepted too. */
export function replyId(frame: Frame): string | undefined {
  if (isRecord(frame.data) && typeof frame.data.id === 'string') return frame.data.id;
  return frame.id;
}

export function parseRoomsResult(data: unknown): RoomsResult {
  const strings = (value: unknown): string[] =>
    Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
  return isRecord(data) ? { rooms: strings(data.rooms), rejected: strings(data.rejected) } : { rooms: [], rejected: [] };
}

/** The message of a server `error` frame. */
export function serverErrorMessage(data: unknown): string {
  return isRecord(data) && typeof data.message === 'string' ? data.message : 'Unknown server error';
}
