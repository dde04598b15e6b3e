/** Helpers for the encrypted-knock tests: the document's test vectors, a door spec from plain values, and messages as span values. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PortRange } from '../../src/config/types.js';
import { type EncryptedDoorSpec, KnockDecoder, type KnockOutcome } from '../../src/knocks/decoder.js';
import { deriveDoorKeys, encodeMessage, type KnockRequest } from '../../src/knocks/format.js';
import { MemoryUsedKnocks, type UsedKnocks } from '../../src/knocks/used.js';
import { PortSpan } from '../../src/knocks/span.js';
import { repoRoot } from '../helpers.js';
import { random } from '../random.js';
import type { Vector } from './reference.js';

/** The ```json test-vectors block of docs/encrypted-knocks.md. */
export function documentVectors(): Vector[] {
  const block = /```json test-vectors\n([\s\S]*?)\n```/.exec(readFileSync(join(repoRoot, 'docs', 'encrypted-knocks.md'), 'utf8'));
  assert.ok(block, 'docs/encrypted-knocks.md has a ```json test-vectors block');
  return JSON.parse(block[1]!) as Vector[];
}

export const SECRET = Buffer.from('a test key of thirty-two bytes!!');
/** 2026-01-01T00:00:10Z, in ms. */
export const T0 = Date.UTC(2026, 0, 1, 0, 0, 10);

export interface SpecOptions {
  bits?: number;
  ranges?: PortRange[];
  allowed?: number[];
  maxDuration?: number;
  window?: number;
  trust?: boolean;
  timeout?: number;
}

export function spec(options: SpecOptions = {}): EncryptedDoorSpec {
  const bits = options.bits ?? 15;
  const allowed = options.allowed ?? [22, 443];
  return {
    name: 'ssh',
    keys: deriveDoorKeys(SECRET, 'ssh'),
    span: new PortSpan(options.ranges ?? [{ proto: 'tcp', first: 30000, last: 30000 + 2 ** bits - 1 }]),
    allowsPort: (port) => allowed.includes(port),
    maxDuration: options.maxDuration ?? 3600,
    windowMs: (options.window ?? 60) * 1000,
    trustKnockIp: options.trust ?? false,
    timeoutMs: (options.timeout ?? 25) * 1000,
  };
}

export function decoder(door = spec(), seen: UsedKnocks = new MemoryUsedKnocks(), maxSources = 1000): KnockDecoder {
  return new KnockDecoder(door, seen, maxSources);
}

export interface MessageOptions {
  request?: Partial<KnockRequest>;
  /** Message time, ms (default T0). */
  time?: number;
  /** The source the client binds a message without an address to. */
  source?: string;
  nonce?: Uint8Array;
}

/** Nonces of the messages made here: random as a client's, but seeded, so that every run of a test knocks the same ports. */
const nonces = random(4242);
const nextNonce = (): Buffer => Buffer.from(Array.from({ length: 4 }, () => Math.floor(nonces() * 256)));

/** The span values of one message to `door`. */
export function message(door: EncryptedDoorSpec, options: MessageOptions = {}): number[] {
  const request: KnockRequest = { port: 22, duration: 60, address: null, ...options.request };
  return encodeMessage(door.keys, door.span.bits, {
    request,
    time: Math.floor((options.time ?? T0) / 1000),
    nonce: options.nonce ?? nextNonce(),
    source: options.source ?? '192.0.2.7',
  });
}

/** Feeds `values` from `source`, one ms apart from `time`; returns every outcome. */
export function feed(target: KnockDecoder, source: string, values: readonly number[], time = T0): KnockOutcome[] {
  return values.flatMap((value, i) => target.knock(source, value, time + i));
}

export function opens(outcomes: readonly KnockOutcome[]): Array<Extract<KnockOutcome, { type: 'open' }>> {
  return outcomes.filter((outcome) => outcome.type === 'open');
}

export function reasons(outcomes: readonly KnockOutcome[]): string[] {
  return outcomes.map((outcome) => (outcome.type === 'open' ? 'open' : outcome.reason));
}
