/**
 * The encrypted knock message, version 1 (docs/encrypted-knocks.md is the specification; this file
 * follows it step by step). A request (port, duration, time, optionally an address) is sealed with
 * AES-256-GCM under a key derived from the door's key file, cut into symbols of k-3 bits, and each
 * symbol is knocked as one port of a 2^k-port span together with 3 check bits from a keyed hash
 * chain; a keyed sync knock comes first. Pure functions only: no clock, no randomness, no I/O.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, type KeyObject } from 'node:crypto';
import { canonicalIpv4, ipv4FromBytes, ipv6FromBytes, parseIpv6 } from '../address.js';

const FORMAT_VERSION = 1;
/** Seconds per time slot: the sync knock and check bits change with the slot. */
export const SLOT_SECONDS = 32;
/** Check bits in every data knock: they keep strays out of a message. */
export const CHECK_BITS = 3;
const NONCE_BYTES = 4;
/** GCM tag, truncated to 64 bits (NIST SP 800-38D allows 64 with a bounded number of attempts). */
const TAG_BYTES = 8;
/**
 * The most a message's timestamp may differ from the knock's time (the largest Knock_Window). Seen
 * messages are remembered this long after their timestamp, so no window setting can revive one.
 */
export const MAX_WINDOW_SECONDS = 600;
/** A span has 2^k ports, k from 8 to 15. */
export const MIN_SPAN_BITS = 8;
export const MAX_SPAN_BITS = 15;

/** How the message binds the client's address: to the knocks' source (AAD), or by carrying it. */
export const ADDRESS_KINDS = ['source', 'ipv4', 'ipv6'] as const;
export type AddressKind = (typeof ADDRESS_KINDS)[number];
const ADDRESS_BYTES: Record<AddressKind, number> = { source: 0, ipv4: 4, ipv6: 16 };

/** time offset in its slot (1 byte), port (2), duration (2). */
const FIXED_PLAINTEXT_BYTES = 5;
const SALT = Buffer.from('knocktail encrypted knocks');

/** Bytes knocked as data: nonce, ciphertext, tag. */
export function payloadBytes(kind: AddressKind): number {
  return NONCE_BYTES + FIXED_PLAINTEXT_BYTES + ADDRESS_BYTES[kind] + TAG_BYTES;
}

/** Data knocks of a message (the sync knock not counted). */
export function dataKnocks(kind: AddressKind, spanBits: number): number {
  return Math.ceil((payloadBytes(kind) * 8) / (spanBits - CHECK_BITS));
}

/** The two keys of one door, derived from its key file with HKDF-SHA-256. */
export interface DoorKeys {
  aead: Buffer;
  sync: Buffer;
}

export function deriveDoorKeys(secret: Uint8Array | KeyObject, door: string): DoorKeys {
  const derive = (purpose: string): Buffer => Buffer.from(hkdfSync('sha256', secret, SALT, Buffer.from(`v${FORMAT_VERSION} ${purpose} ${door}`, 'utf8'), 32));
  return { aead: derive('aead'), sync: derive('sync') };
}

export function slotOf(seconds: number): number {
  return Math.floor(seconds / SLOT_SECONDS);
}

/** What a message of one slot and address kind looks like on the span, before its data is known. */
export interface SlotPattern {
  slot: number;
  kind: AddressKind;
  /** Span value of the sync knock. */
  sync: number;
  /** Keyed seed of the check bits (see checkBits). */
  seed: number;
  /** Data knocks of a message of this kind on this span. */
  length: number;
}

/**
 * The check bits run a keyed hash chain over the message (docs/encrypted-knocks.md, step 9): the state
 * of data knock 0 is mix(seed), that of knock j mixes in j and the symbol of knock j-1, and a knock's
 * check bits are the top bits of its state. A stray standing in for a knock, or knocks taken one place
 * off, change the state and with it every later check.
 */
export function firstCheckState(pattern: SlotPattern): number {
  return mix32(pattern.seed);
}

export function nextCheckState(state: number, j: number, previousSymbol: number): number {
  return mix32(state ^ (j << 16) ^ previousSymbol);
}

export function checkOf(state: number): number {
  return state >>> (32 - CHECK_BITS);
}

/** MurmurHash3's 32-bit finalizer. */
function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function slotPattern(keys: DoorKeys, slot: number, kind: AddressKind, spanBits: number): SlotPattern {
  const mac = createHmac('sha256', keys.sync).update(slotHeader(slot, kind)).digest();
  return { slot, kind, sync: ((mac[0]! << 8) | mac[1]!) & ((1 << spanBits) - 1), seed: mac.readUInt32BE(2), length: dataKnocks(kind, spanBits) };
}

/** version, address kind, slot (big-endian): the HMAC input of a pattern and the head of the GCM nonce. */
function slotHeader(slot: number, kind: AddressKind): Buffer {
  const header = Buffer.alloc(6);
  header[0] = FORMAT_VERSION;
  header[1] = ADDRESS_KINDS.indexOf(kind);
  header.writeUInt32BE(slot, 2);
  return header;
}

function gcmNonce(slot: number, kind: AddressKind, nonce: Uint8Array): Buffer {
  return Buffer.concat([slotHeader(slot, kind), nonce, Buffer.alloc(2)]);
}

/** Address bytes: 4 for IPv4, 16 for IPv6; null when `ip` is neither. */
function addressBytes(ip: string): Buffer | null {
  if (canonicalIpv4(ip) !== null) return Buffer.from(ip.split('.').map(Number));
  const groups = parseIpv6(ip);
  if (groups === null) return null;
  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => bytes.writeUInt16BE(group, 2 * i));
  return bytes;
}

/** What a client asks for. */
export interface KnockRequest {
  /** The door port to open, 1-65535. */
  port: number;
  /** Seconds, 1-65535. */
  duration: number;
  /** The address to open for, carried in the message; null binds the message to the knocks' source address. */
  address: string | null;
}

/** Everything that makes one message: the request, when, and the per-message randomness. */
export interface MessageInput {
  request: KnockRequest;
  /** Unix time of the message, whole seconds. */
  time: number;
  /** 4 random bytes, never reused with the same key in the same slot. */
  nonce: Uint8Array;
  /** The address the daemon will see the knocks come from; needed when `request.address` is null. */
  source: string | null;
}

function addressKind(address: string | null): AddressKind {
  if (address === null) return 'source';
  return address.includes(':') ? 'ipv6' : 'ipv4';
}

/** The span values of a message: the sync knock, then the data knocks. Throws on a request the format cannot carry. */
export function encodeMessage(keys: DoorKeys, spanBits: number, input: MessageInput): number[] {
  const { request, time, nonce } = input;
  assertSpanBits(spanBits);
  if (!isUint16(request.port) || request.port === 0) throw new Error(`port ${request.port} is not 1-65535`);
  if (!isUint16(request.duration) || request.duration === 0) throw new Error(`duration ${request.duration} is not 1-65535 seconds`);
  if (!Number.isSafeInteger(time) || time < 0 || slotOf(time) > 0xffffffff) throw new Error(`time ${time} is not a Unix time in seconds`);
  if (nonce.length !== NONCE_BYTES) throw new Error(`the nonce must be ${NONCE_BYTES} bytes`);
  const kind = addressKind(request.address);
  const carried = request.address === null ? Buffer.alloc(0) : addressBytes(request.address);
  if (carried === null) throw new Error(`"${request.address}" is not an IP address`);
  const bound = kind === 'source' ? (input.source === null ? null : addressBytes(input.source)) : Buffer.alloc(0);
  if (bound === null) throw new Error('a message without an address needs the source address the daemon will see');
  const slot = slotOf(time);
  const plaintext = Buffer.concat([Buffer.from([time - slot * SLOT_SECONDS, request.port >> 8, request.port & 255, request.duration >> 8, request.duration & 255]), carried]);
  const cipher = createCipheriv('aes-256-gcm', keys.aead, gcmNonce(slot, kind, nonce), { authTagLength: TAG_BYTES });
  cipher.setAAD(bound);
  const payload = Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  const pattern = slotPattern(keys, slot, kind, spanBits);
  const values = [pattern.sync];
  let state = firstCheckState(pattern);
  for (const [j, symbol] of toSymbols(payload, spanBits - CHECK_BITS).entries()) {
    if (j > 0) state = nextCheckState(state, j, values.at(-1)! >> CHECK_BITS);
    values.push((symbol << CHECK_BITS) | checkOf(state));
  }
  return values;
}

/** A message that authenticated, as read from its plaintext (its fields not yet checked against a door). */
export interface OpenedMessage {
  request: KnockRequest;
  /** Unix time of the message, whole seconds; null when the time offset is out of range (malformed). */
  time: number | null;
  /** Identity for replay detection: address kind, slot and nonce, hex. */
  id: string;
}

/**
 * Opens the data knocks `symbols` (check bits removed) of a message that followed `pattern`'s sync knock
 * from `source`. Returns null when they do not authenticate (or their padding bits are not zero).
 */
export function openMessage(keys: DoorKeys, pattern: SlotPattern, symbols: ArrayLike<number>, spanBits: number, source: string): OpenedMessage | null {
  const payload = fromSymbols(symbols, spanBits - CHECK_BITS, payloadBytes(pattern.kind));
  if (payload === null) return null;
  const aad = pattern.kind === 'source' ? addressBytes(source) : Buffer.alloc(0);
  if (aad === null) return null;
  const nonce = payload.subarray(0, NONCE_BYTES);
  const tagAt = payload.length - TAG_BYTES;
  const decipher = createDecipheriv('aes-256-gcm', keys.aead, gcmNonce(pattern.slot, pattern.kind, nonce), { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(payload.subarray(tagAt));
  const head = decipher.update(payload.subarray(NONCE_BYTES, tagAt));
  let plaintext: Buffer;
  try {
    plaintext = Buffer.concat([head, decipher.final()]);
  } catch {
    return null;
  }
  const offset = plaintext[0]!;
  const address = pattern.kind === 'ipv4' ? ipv4FromBytes(plaintext, FIXED_PLAINTEXT_BYTES) : pattern.kind === 'ipv6' ? ipv6FromBytes(plaintext, FIXED_PLAINTEXT_BYTES) : null;
  return {
    request: { port: plaintext.readUInt16BE(1), duration: plaintext.readUInt16BE(3), address },
    time: offset < SLOT_SECONDS ? pattern.slot * SLOT_SECONDS + offset : null,
    id: `${ADDRESS_KINDS.indexOf(pattern.kind)}-${pattern.slot.toString(16)}-${Buffer.from(nonce).toString('hex')}`,
  };
}

/** Big-endian bits of `bytes` in groups of `bits`, the last one padded with zeros. */
export function toSymbols(bytes: Uint8Array, bits: number): number[] {
  const symbols: number[] = [];
  let buffer = 0;
  let held = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    held += 8;
    while (held >= bits) {
      held -= bits;
      symbols.push((buffer >>> held) & ((1 << bits) - 1));
    }
    buffer &= (1 << held) - 1;
  }
  if (held > 0) symbols.push((buffer << (bits - held)) & ((1 << bits) - 1));
  return symbols;
}

/** The inverse of toSymbols for a payload of `length` bytes; null when the padding bits are not zero. */
export function fromSymbols(symbols: ArrayLike<number>, bits: number, length: number): Buffer | null {
  const bytes = Buffer.alloc(length);
  let buffer = 0;
  let held = 0;
  let at = 0;
  for (let i = 0; i < symbols.length; i++) {
    buffer = ((buffer << bits) | symbols[i]!) & 0xffffff;
    held += bits;
    while (held >= 8 && at < length) {
      held -= 8;
      bytes[at++] = (buffer >>> held) & 255;
    }
  }
  return at === length && (buffer & ((1 << held) - 1)) === 0 ? bytes : null;
}

function isUint16(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xffff;
}

function assertSpanBits(spanBits: number): void {
  if (!Number.isInteger(spanBits) || spanBits < MIN_SPAN_BITS || spanBits > MAX_SPAN_BITS) throw new Error(`a span has 2^${MIN_SPAN_BITS} to 2^${MAX_SPAN_BITS} ports`);
}
