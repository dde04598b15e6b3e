/**
 * Decoding encrypted knocks (docs/encrypted-knocks.md) under a flood of random knocks on the span: the
 * per-knock cost of KnockDecoder, measured in this process (a micro-benchmark, unlike the others, which
 * time whole processes). Genuine messages are mixed into the flood and must all open: the figure counts
 * only if the decoder still does its job.
 */
import { randomBytes } from 'node:crypto';
import { type EncryptedDoorSpec, KnockDecoder } from '../src/knocks/decoder.js';
import { deriveDoorKeys, encodeMessage, slotOf, slotPattern } from '../src/knocks/format.js';
import { MemoryUsedKnocks } from '../src/knocks/used.js';
import { PortSpan } from '../src/knocks/span.js';
import { random } from '../test/random.js';
import { median } from './harness.js';

export interface KnockFloodResult {
  /** Knocks per run, the genuine messages' included. */
  knocks: number;
  sources: number;
  genuine: number;
  runs: number;
  /** Median ns per knock: random knocks from many sources, with the genuine messages among them. */
  floodNsPerKnock: number;
  /** Median ns per knock of the same loop doing only the span lookup: the floor. */
  lookupNsPerKnock: number;
  /** Median ns per knock when every source first hits a current sync value (an observer's flood: every knock is searched). */
  syncedNsPerKnock: number;
  /** Of the last flood run. */
  opened: number;
  syncs: number;
  attempts: number;
}

const SPAN_BITS = 15;
const T0 = Date.UTC(2026, 0, 1);

function door(): EncryptedDoorSpec {
  return {
    name: 'bench',
    keys: deriveDoorKeys(randomBytes(32), 'bench'),
    span: new PortSpan([{ proto: 'tcp', first: 30000, last: 30000 + 2 ** SPAN_BITS - 1 }]),
    allowsPort: (port) => port === 22,
    maxDuration: 3600,
    windowMs: 60_000,
    trustKnockIp: false,
    timeoutMs: 25_000,
  };
}

interface Knock {
  source: string;
  value: number;
  time: number;
}

/** `knocks` random knocks, 100 µs apart (so the flood crosses slots), from `sources` addresses, with `genuine` messages spliced in. */
function flood(spec: EncryptedDoorSpec, knocks: number, sources: number, genuine: number): Knock[] {
  const next = random(6);
  const addresses = Array.from({ length: sources }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  const out: Knock[] = Array.from({ length: knocks - genuine * 13 }, () => ({ source: addresses[Math.floor(next() * sources)]!, value: Math.floor(next() * spec.span.size), time: 0 }));
  for (let m = 0; m < genuine; m++) {
    const source = `192.0.${m >> 8}.${m & 255}`;
    let at = Math.floor(next() * (out.length - 1000));
    const time = T0 + at * 0.1;
    const values = encodeMessage(spec.keys, SPAN_BITS, { request: { port: 22, duration: 60, address: null }, time: Math.floor(time / 1000), nonce: randomBytes(4), source });
    for (const value of values) {
      at += 1 + Math.floor(next() * 50);
      out.splice(at, 0, { source, value, time: 0 });
    }
  }
  out.forEach((knock, i) => (knock.time = T0 + i * 0.1));
  return out;
}

/** Every source knocks the current sync value, then random knocks: the decoder searches at every knock. */
function synced(spec: EncryptedDoorSpec, knocks: number): Knock[] {
  const next = random(7);
  const sync = slotPattern(spec.keys, slotOf(T0 / 1000), 'source', SPAN_BITS).sync;
  return Array.from({ length: knocks }, (_, i) => ({
    source: `10.1.${(i / 50) >> 8}.${(i / 50) & 255}`,
    value: i % 50 === 0 ? sync : Math.floor(next() * spec.span.size),
    time: T0 + i * 0.1,
  }));
}

function nsPerKnock(knocks: readonly Knock[], handle: (knock: Knock) => void): number {
  const started = process.hrtime.bigint();
  for (const knock of knocks) handle(knock);
  return Number(process.hrtime.bigint() - started) / knocks.length;
}

export function knockFlood(knocks: number, runs: number): KnockFloodResult {
  const spec = door();
  const sources = 65_536;
  const genuine = Math.max(10, Math.round(knocks / 1000));
  const input = flood(spec, knocks, sources, genuine);
  const observer = synced(spec, Math.round(knocks / 10));
  const floods: number[] = [];
  const lookups: number[] = [];
  const syncedRuns: number[] = [];
  let last: KnockDecoder | null = null;
  for (let run = 0; run < runs; run++) {
    const decoder = new KnockDecoder(spec, new MemoryUsedKnocks(), 100_000);
    floods.push(nsPerKnock(input, (knock) => void decoder.knock(knock.source, knock.value, knock.time)));
    last = decoder;
    let sink = 0;
    lookups.push(nsPerKnock(input, (knock) => void (sink += spec.span.valueOf('tcp', 30000 + knock.value))));
    if (sink < 0) throw new Error('unreachable');
    const observed = new KnockDecoder(spec, new MemoryUsedKnocks(), 100_000);
    syncedRuns.push(nsPerKnock(observer, (knock) => void observed.knock(knock.source, knock.value, knock.time)));
  }
  const counters = last!.counters;
  if (counters.opened !== genuine) throw new Error(`only ${counters.opened} of ${genuine} genuine messages opened under the flood`);
  return {
    knocks: input.length,
    sources,
    genuine,
    runs,
    floodNsPerKnock: median(floods),
    lookupNsPerKnock: median(lookups),
    syncedNsPerKnock: median(syncedRuns),
    opened: counters.opened,
    syncs: counters.syncs,
    attempts: counters.attempts,
  };
}
