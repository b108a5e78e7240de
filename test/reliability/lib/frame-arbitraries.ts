import { createECDH, randomBytes } from 'node:crypto';
import fc from 'fast-check';

/**
 * fast-check generators for /stream fuzzing. A generated session is plain
 * data (cheap to sample in bulk, printable as a counterexample); big and
 * deep payloads are described by size and built only when sent, and
 * anything needing the session key is sealed at send time (fuzz-session.ts).
 */

export const FRAME_LIMIT_BYTES = 128 * 1024;

/** What the sender knows about whether a join/leave inside the frame must be answered. */
export type ReplyDemand = 'must' | 'never' | 'may';

/** A room entry: JSON text used as is, or a nesting built when sent. */
export type RoomSpec = { json: string } | { deep: number; shape: 'array' | 'object' };

/** How a sealed frame is damaged; `none` is a correct frame. */
export type SealMutation =
  | 'none'
  | 'flip-tag'
  | 'flip-ct'
  | 'short-iv'
  | 'long-iv'
  | 'bad-base64-iv'
  | 'bad-base64-ct'
  | 'truncated-ct'
  | 'swapped'
  | 'wrong-key'
  | 'base64url'
  | 'unpadded'
  | 'whitespace';

/** Mutations after which the server cannot decrypt the frame, whatever the bytes. */
export const UNDECRYPTABLE: ReadonlySet<SealMutation> = new Set([
  'flip-tag',
  'flip-ct',
  'short-iv',
  'long-iv',
  'bad-base64-iv',
  'bad-base64-ct',
  'truncated-ct',
  'swapped',
  'wrong-key',
]);

export type InnerSpec =
  | { kind: 'join'; leave: boolean; rooms: RoomSpec[] }
  | { kind: 'text'; text: string }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'nested-encrypted' };

export type HugeShape = 'custom-data' | 'room-name' | 'token' | 'raw' | 'sealed-ct' | 'id';

export type FuzzFrame =
  | { kind: 'text'; label: string; text: string }
  | { kind: 'join'; label: string; leave: boolean; rooms: RoomSpec[]; sealed: boolean; binary: boolean }
  | { kind: 'sealed'; label: string; inner: InnerSpec; mutation: SealMutation; bit: number }
  | { kind: 'replay'; label: string }
  | { kind: 'huge'; label: string; bytes: number; fill: string; shape: HugeShape }
  | { kind: 'deep'; label: string; depth: number; shape: 'array' | 'object'; where: 'data' | 'raw' }
  | { kind: 'binary'; label: string; bytes: Uint8Array }
  | { kind: 'invalid-utf8'; label: string; bytes: Uint8Array };

export interface SessionPlan {
  /** `pre-auth`: frames before any authenticate; `encrypted`: after a real handshake. */
  mode: 'pre-auth' | 'encrypted';
  frames: FuzzFrame[];
}

const ecdh = createECDH('prime256v1');
ecdh.generateKeys();
/** A well-formed client key, so that a frame fails for the field under test and not for the key. */
export const SAMPLE_PUBLIC_KEY = ecdh.getPublicKey('base64', 'uncompressed');
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** Shaped like a JWT, signed by no key the server knows. */
export const FAKE_TOKEN = `${b64url({ alg: 'ES256', kid: 'fuzz', typ: 'JWT' })}.${b64url({ userId: 'fuzz', exp: 4102444800 })}.${randomBytes(64).toString('base64url')}`;

const TEMPLATES: Record<string, { value: Record<string, unknown>; paths: string[] }> = {
  authenticate: {
    value: { event: 'authenticate', data: { type: 'Bearer', token: FAKE_TOKEN, clientPublicKey: SAMPLE_PUBLIC_KEY } },
    paths: ['event', 'data', 'id', 'data.type', 'data.token', 'data.clientPublicKey', 'data.publicKey'],
  },
  join: { value: { event: 'join', data: { rooms: ['ws-default', 'lobby'] }, id: 'wt' }, paths: ['event', 'data', 'id', 'data.rooms', 'data.rooms.0'] },
  leave: { value: { event: 'leave', data: { rooms: ['lobby'] }, id: 'wt' }, paths: ['event', 'data', 'id', 'data.rooms', 'data.rooms.0'] },
  heartbeat: { value: { event: 'heartbeat' }, paths: ['event', 'data', 'id'] },
  encrypted: {
    value: { event: 'encrypted', data: { iv: 'AAAAAAAAAAAAAAAA', ct: 'AAAAAAAAAAAAAAAAAAAAAA==' } },
    paths: ['event', 'data', 'id', 'data.iv', 'data.ct'],
  },
  custom: { value: { event: 'custom', data: { any: 1 } }, paths: ['event', 'data', 'id'] },
};
const EVENT_NAMES = Object.keys(TEMPLATES);

/** Every JSON type, plus the values parsers and validators tend to trip over. */
const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 24, unit: 'binary' }),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
  fc.constantFrom<unknown>('', ' ', '\u0000', -0, 1e308, -1, [], {}, '__proto__', 'constructor', [null], { length: 1e9 }),
  fc.constant(JSON.parse('{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}') as unknown),
);

/** true about `yes` times in `yes + no`. */
function rarely(yes: number, no: number): fc.Arbitrary<boolean> {
  return fc.oneof({ weight: yes, arbitrary: fc.constant(true) }, { weight: no, arbitrary: fc.constant(false) });
}

/** Replaces (or deletes) the value at a dotted path of a deep copy. */
function withFieldChanged(value: Record<string, unknown>, path: string, next: unknown, remove: boolean): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
  const keys = path.split('.');
  let holder: Record<string, unknown> = copy;
  for (const key of keys.slice(0, -1)) {
    const inner = holder[key];
    if (typeof inner !== 'object' || inner === null) return copy;
    holder = inner as Record<string, unknown>;
  }
  const last = keys[keys.length - 1] as string;
  if (remove) delete holder[last];
  else holder[last] = next;
  return copy;
}

/** One to three fields of one event's frame given the wrong type, or removed. */
const wrongTypeFrame: fc.Arbitrary<FuzzFrame> = fc
  .constantFrom(...EVENT_NAMES)
  .chain((event) => {
    const template = TEMPLATES[event] as { value: Record<string, unknown>; paths: string[] };
    const change = fc.record({ path: fc.constantFrom(...template.paths), value: wrongValue, remove: rarely(1, 6) });
    return fc.array(change, { minLength: 1, maxLength: 3 }).map((changes) => {
      let value = template.value;
      for (const each of changes) value = withFieldChanged(value, each.path, each.value, each.remove);
      const text = JSON.stringify(value) ?? 'null';
      return { kind: 'text' as const, label: `wrong-type:${event}`, text };
    });
  });

const MUTATION_CHARS = ['"', '{', '}', '[', ']', ',', ':', '\\', '\u0000', '\ud83d', '\ud800', 'é', ' ', 'a', '1', 'null', '\\u0000', '\\ud800', '"__proto__"'];

/** A valid frame's text with characters deleted, inserted, replaced, cut or repeated. */
const mutatedFrame: fc.Arbitrary<FuzzFrame> = fc
  .record({
    base: fc.constantFrom(...EVENT_NAMES),
    edits: fc.array(
      fc.record({ op: fc.constantFrom('delete', 'insert', 'replace', 'truncate', 'repeat'), at: fc.nat(), text: fc.constantFrom(...MUTATION_CHARS) }),
      { minLength: 1, maxLength: 5 },
    ),
  })
  .map(({ base, edits }) => {
    let text = JSON.stringify((TEMPLATES[base] as { value: unknown }).value);
    for (const edit of edits) {
      const at = edit.at % (text.length + 1);
      if (edit.op === 'delete') text = text.slice(0, at) + text.slice(at + 1);
      else if (edit.op === 'insert') text = text.slice(0, at) + edit.text + text.slice(at);
      else if (edit.op === 'replace') text = text.slice(0, at) + edit.text + text.slice(at + edit.text.length);
      else if (edit.op === 'truncate') text = text.slice(0, at);
      else text = text.slice(0, at) + text.slice(at, at + 8).repeat(3) + text.slice(at + 8);
    }
    return { kind: 'text' as const, label: `mutated:${base}`, text };
  });

const randomText: fc.Arbitrary<FuzzFrame> = fc.oneof(
  fc.json({ maxDepth: 4 }).map((text) => ({ kind: 'text' as const, label: 'random:json', text })),
  fc.string({ maxLength: 200, unit: 'binary' }).map((text) => ({ kind: 'text' as const, label: 'random:string', text })),
  fc
    .record({
      event: fc.oneof(fc.constantFrom(...EVENT_NAMES, 'joined', 'connected', 'error', 'toClient'), fc.string({ maxLength: 12 })),
      data: fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined }),
      id: fc.option(fc.oneof(fc.string({ maxLength: 8 }), wrongValue), { nil: undefined }),
    })
    .map((value) => ({ kind: 'text' as const, label: 'random:object', text: JSON.stringify(value) })),
);

const roomSpec: fc.Arbitrary<RoomSpec> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('ws-default', 'ws-notification', 'lobby', 'merchant:42', 'user:fuzz-user', 'ws:evil').map((name) => ({ json: JSON.stringify(name) })) },
  { weight: 3, arbitrary: fc.uuid().map((id) => ({ json: JSON.stringify(id) })) },
  { weight: 3, arbitrary: wrongValue.map((value) => ({ json: JSON.stringify(value) ?? 'null' })) },
  { weight: 2, arbitrary: fc.string({ maxLength: 300 }).map((name) => ({ json: JSON.stringify(name) })) },
  { weight: 1, arbitrary: fc.record({ deep: fc.constantFrom(100, 1_000, 4_000, 10_000), shape: fc.constantFrom<'array' | 'object'>('array', 'object') }) },
);

const rooms = fc.array(roomSpec, { maxLength: 60 });

/** A well-formed join/leave with an id: the protocol promises a reply once connected. */
const validJoin: fc.Arbitrary<FuzzFrame> = fc
  .record({ leave: fc.boolean(), rooms, sealed: fc.boolean(), binary: rarely(1, 4) })
  .map((spec) => ({ kind: 'join' as const, label: `valid:${spec.leave ? 'leave' : 'join'}${spec.sealed ? ':sealed' : ''}`, ...spec }));

const innerSpec: fc.Arbitrary<InnerSpec> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ leave: fc.boolean(), rooms }).map((spec) => ({ kind: 'join' as const, ...spec })) },
  { weight: 2, arbitrary: fc.oneof(fc.json({ maxDepth: 3 }), fc.string({ maxLength: 100, unit: 'binary' })).map((text) => ({ kind: 'text' as const, text })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'text' as const, text: '{"event":"heartbeat"}' }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => ({ kind: 'bytes' as const, bytes })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'nested-encrypted' as const }) },
);

const sealedFrame: fc.Arbitrary<FuzzFrame> = fc
  .record({
    inner: innerSpec,
    mutation: fc.oneof(
      { weight: 3, arbitrary: fc.constant<SealMutation>('none') },
      { weight: 7, arbitrary: fc.constantFrom<SealMutation>(...UNDECRYPTABLE, 'base64url', 'unpadded', 'whitespace') },
    ),
    bit: fc.nat(),
  })
  .map((spec) => ({ kind: 'sealed' as const, label: `sealed:${spec.mutation}`, ...spec }));

const hugeFrame: fc.Arbitrary<FuzzFrame> = fc
  .record({
    bytes: fc.oneof(
      fc.integer({ min: FRAME_LIMIT_BYTES - 2048, max: FRAME_LIMIT_BYTES }),
      fc.integer({ min: FRAME_LIMIT_BYTES + 1, max: FRAME_LIMIT_BYTES + 4096 }),
      fc.integer({ min: 256 * 1024, max: 1024 * 1024 }),
    ),
    fill: fc.constantFrom('x', 'é', '€', '😀', 'A', '"', '\\'),
    shape: fc.constantFrom<HugeShape>('custom-data', 'room-name', 'token', 'raw', 'sealed-ct', 'id'),
  })
  .map((spec) => ({ kind: 'huge' as const, label: `huge:${spec.bytes > FRAME_LIMIT_BYTES ? 'over' : 'under'}:${spec.shape}`, ...spec }));

const deepFrame: fc.Arbitrary<FuzzFrame> = fc
  .record({
    depth: fc.constantFrom(1_000, 4_999, 5_000, 10_000, 20_000, 60_000),
    shape: fc.constantFrom<'array' | 'object'>('array', 'object'),
    where: fc.constantFrom<'data' | 'raw'>('data', 'raw'),
  })
  .map((spec) => ({ kind: 'deep' as const, label: `deep:${spec.where}`, ...spec }));

const INVALID_SEQUENCES = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]];

const invalidUtf8Bytes = fc
  .record({ at: fc.nat(), sequence: fc.constantFrom(...INVALID_SEQUENCES), base: fc.constantFrom(...EVENT_NAMES) })
  .map(({ at, sequence, base }) => {
    const text = Buffer.from(JSON.stringify((TEMPLATES[base] as { value: unknown }).value));
    const cut = at % (text.length + 1);
    return new Uint8Array(Buffer.concat([text.subarray(0, cut), Buffer.from(sequence), text.subarray(cut)]));
  });

const binaryFrame: fc.Arbitrary<FuzzFrame> = fc.oneof(
  fc.uint8Array({ maxLength: 256 }).map((bytes) => ({ kind: 'binary' as const, label: 'binary:random', bytes })),
  invalidUtf8Bytes.map((bytes) => ({ kind: 'binary' as const, label: 'binary:invalid-utf8', bytes })),
  wrongTypeFrame.map((frame) => ({ kind: 'binary' as const, label: 'binary:frame', bytes: new Uint8Array(Buffer.from((frame as { text: string }).text)) })),
);

/** Any frame, weighted so that a session usually survives long enough to reach the later kinds. */
export const fuzzFrame: fc.Arbitrary<FuzzFrame> = fc.oneof(
  { weight: 14, arbitrary: randomText },
  { weight: 20, arbitrary: wrongTypeFrame },
  { weight: 14, arbitrary: mutatedFrame },
  { weight: 14, arbitrary: validJoin },
  { weight: 16, arbitrary: sealedFrame },
  { weight: 4, arbitrary: fc.constant<FuzzFrame>({ kind: 'replay', label: 'replay' }) },
  { weight: 8, arbitrary: binaryFrame },
  { weight: 3, arbitrary: deepFrame },
  { weight: 2, arbitrary: hugeFrame },
  { weight: 1, arbitrary: invalidUtf8Bytes.map((bytes) => ({ kind: 'invalid-utf8' as const, label: 'invalid-utf8:text', bytes })) },
);

/** A session: mostly short bursts under the rate limit, sometimes a flood past it (4006). */
export const sessionPlan: fc.Arbitrary<SessionPlan> = fc.record({
  mode: fc.constantFrom<'pre-auth' | 'encrypted'>('pre-auth', 'encrypted', 'encrypted'),
  frames: fc.oneof(
    { weight: 9, arbitrary: fc.array(fuzzFrame, { minLength: 1, maxLength: 40, size: 'max' }) },
    { weight: 1, arbitrary: fc.array(fuzzFrame, { minLength: 90, maxLength: 130 }) },
  ),
});
