/**
 * What each close means to the person at the page, keyed by the SDK's close
 * kinds so that a new kind cannot go unexplained (the Record must be total).
 */
import { CloseCodes } from '../../../domain/protocol.ts';
import { closeKind, type CloseKind } from '../../sdk/signal-client.ts';

export const CLOSE_MEANINGS: Record<CloseKind, string> = {
  normal: 'closed normally (by this page, or the server ended it cleanly)',
  'shutting-down': 'the server instance is shutting down; the SDK reconnects, possibly to another instance',
  'policy-violation': 'three frames in a row did not decrypt on the server',
  'message-too-big': 'a frame from this client was over the server limit (128 KiB by default)',
  'auth-timeout': 'no authenticate frame within 5 s, or authentication and key exchange not done within 15 s',
  'heartbeat-timeout': 'the server heard nothing from this client (no frame, no pong) for 90 s',
  'auth-failed': 'the token was missing or rejected; the SDK does not retry with the same token',
  'encryption-required': 'the key exchange failed or no public key was offered; the SDK does not retry',
  'slow-consumer': "this client did not read fast enough and the server's send buffer for it overflowed",
  'rate-limited': 'this client sent frames faster than the limit (bursts of 100, 50 per second)',
  'token-expired': "the token's exp passed while connected; get a new token first",
  'disconnected-by-server': 'an operator disconnected this client through the REST API; the SDK does not retry',
  abnormal: 'the connection dropped without a close frame (network loss, server crash, or a local timeout)',
};

export function describeClose(code: number, reason: string): string {
  const kind = closeKind(code);
  return `${code}${reason === '' ? '' : ` ${reason}`} (${kind}): ${CLOSE_MEANINGS[kind]}`;
}

/** The server's close codes with their reason strings, plus 1000 and 1006 that a browser reports too. */
export function closeCodeRows(): Array<{ code: number; kind: CloseKind; meaning: string }> {
  const codes = [1000, ...Object.values(CloseCodes).map((entry) => entry.code), 1006];
  return codes.map((code) => {
    const kind = closeKind(code);
    const reason = Object.values(CloseCodes).find((entry) => entry.code === code)?.reason;
    return { code, kind, meaning: reason === undefined ? CLOSE_MEANINGS[kind] : `${reason}: ${CLOSE_MEANINGS[kind]}` };
  });
}
