/**
 * The matcher's cost per hit, measured in this process (a micro-benchmark, like bench/knocks.ts): a fixed door's
 * sequences beside a rolling door's and an encrypted door's knocks, through Matcher.handle, so the range doors'
 * extension point (docs/design.md, "Range doors") is measured with everything a hit costs there. Every workload is
 * checked: the opens it must give are counted, so a figure counts only if the matcher still does its job.
 */
import { createSecretKey, randomBytes } from 'node:crypto';
import { defaultDoor } from '../src/config/parse.js';
import type { DoorConfig, PortRange } from '../src/config/types.js';
import type { KnockHit } from '../src/hit.js';
import { encryptedDoorSpec } from '../src/knocks/decoder.js';
import { encodeMessage } from '../src/knocks/format.js';
import { RollingSequences } from '../src/knocks/rolling.js';
import { MemoryUsedKnocks } from '../src/knocks/used.js';
import { Matcher, type MatchEvent } from '../src/matcher/matcher.js';
import { MemoryOneTimeFiles } from '../src/matcher/one-time-files.js';
import { random } from '../test/random.js';
import { median } from './harness.js';

export interface MatcherResult {
  /** Hits per run of each workload. */
  hits: number;
  runs: number;
  /** Median ns of CPU time per hit: 4-knock sequences of a fixed door from distinct sources, each one opening. */
  fixedNsPerHit: number;
  /** The same number of 4-knock sequences of a rolling door's current periods from distinct sources (one open per period, the rest refused as replays). */
  rollingNsPerHit: number;
  /** rollingNsPerHit ÷ fixedNsPerHit. */
  rollingVsFixed: number;
  /** Random knocks on the rolling door's range (a scan): the window and first-port check only, now and then an attempt. */
  rollingScanNsPerHit: number;
  /** Random knocks on an encrypted door's 2^15 span with genuine messages among them, through the matcher. */
  encryptedNsPerHit: number;
  /** Opens of the last run of each workload (checked against what it must give). */
  opens: { fixed: number; rolling: number; encrypted: number };
}

const T0 = Date.UTC(2026, 0, 1);
/** One hit per ms: a million hits cross 33 rolling periods and 31 message slots. */
const SPACING_MS = 1;
const LOCAL = '192.0.2.1';

function door(name: string, settings: Partial<DoorConfig>): DoorConfig {
  return { ...defaultDoor(name, { file: 'bench.conf', line: 1 }), seqTimeout: 5, startCommand: 'true', ...settings };
}

const secret = (bytes: Buffer) => ({ path: 'bench.key', key: createSecretKey(bytes), size: bytes.length, uid: 0, mode: 0o600 });
const source = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

function hit(src: string, port: number, time: number): KnockHit {
  return { time, src, dst: LOCAL, proto: 'tcp', dport: port, sport: 40000, flags: 2, input: 'bench', iface: null };
}

/** Each source knocks `sequenceAt(time)` whole, its knocks back to back; sources one after the other. */
function sequences(count: number, sequenceAt: (time: number) => readonly number[]): KnockHit[] {
  const hits: KnockHit[] = [];
  for (let s = 0; hits.length < count; s++) {
    const time = T0 + hits.length * SPACING_MS;
    for (const port of sequenceAt(time)) hits.push(hit(source(s), port, T0 + hits.length * SPACING_MS));
  }
  return hits.slice(0, count);
}

/**
 * Runs `hits` through a fresh matcher of `doors` `runs` times: median ns of CPU time per hit, and the last run's
 * opens. CPU time, not wall time: on a shared machine another process's load stretches the wall clock, not this.
 */
function measure(doors: DoorConfig[], hits: readonly KnockHit[], runs: number): { nsPerHit: number; opens: number } {
  const times: number[] = [];
  let opens = 0;
  for (let run = 0; run < runs; run++) {
    opens = 0;
    const count = (event: MatchEvent): void => void (event.type === 'open' && opens++);
    const matcher = new Matcher(doors, { maxSources: 100_000, isLocal: null, oneTimeFiles: new MemoryOneTimeFiles(), usedKnocks: new MemoryUsedKnocks() }, count);
    const started = process.cpuUsage();
    for (const knock of hits) matcher.handle(knock);
    const used = process.cpuUsage(started);
    times.push(((used.user + used.system) * 1000) / hits.length);
  }
  return { nsPerHit: median(times), opens };
}

export function matcherCost(count: number, runs: number): MatcherResult {
  const fixed = door('fixed', { sequence: [7000, 8000, 9000, 7500].map((port) => ({ proto: 'tcp' as const, port })) });
  const range: PortRange = { proto: 'tcp', first: 40000, last: 40999 };
  const rolling = door('rolling', { rolling: { secret: secret(randomBytes(32)), ports: range, length: 4, period: 30 } });
  const span: PortRange = { proto: 'tcp', first: 30000, last: 30000 + 2 ** 15 - 1 };
  const encrypted = door('encrypted', {
    encrypted: { key: secret(randomBytes(32)), span: [span], allowedPorts: [{ first: 22, last: 22 }], maxDuration: 3600, window: 60, trustKnockIp: false },
  });

  const fixedHits = sequences(count, () => [7000, 8000, 9000, 7500]);
  const derived = new RollingSequences('rolling', rolling.rolling!);
  const rollingHits = sequences(count, (time) => derived.window(time).accepted[1]!.steps.map((step) => step.port));
  const next = random(0x6d61);
  const scanHits = Array.from({ length: count }, (_, i) => hit(source(i % 65_536), 40000 + Math.floor(next() * 1000), T0 + i * SPACING_MS));

  // Random knocks on the span from 65,536 sources, with genuine messages of their own sources spliced in.
  const spec = encryptedDoorSpec(encrypted);
  const genuine = Math.max(10, Math.round(count / 1000));
  const flood = Array.from({ length: count - genuine * 13 }, () => ({ src: source(Math.floor(next() * 65_536)), port: span.first + Math.floor(next() * 2 ** 15) }));
  for (let m = 0; m < genuine; m++) {
    const src = `192.0.${m >> 8}.${m & 255}`;
    let at = Math.floor(next() * (flood.length - 1000));
    const values = encodeMessage(spec.keys, 15, { request: { port: 22, duration: 60, address: null }, time: Math.floor((T0 + at * SPACING_MS) / 1000), nonce: randomBytes(4), source: src });
    for (const value of values) {
      at += 1 + Math.floor(next() * 50);
      flood.splice(at, 0, { src, port: span.first + value });
    }
  }
  const encryptedHits = flood.map((knock, i) => hit(knock.src, knock.port, T0 + i * SPACING_MS));

  const fixedRun = measure([fixed], fixedHits, runs);
  const rollingRun = measure([rolling], rollingHits, runs);
  const scanRun = measure([rolling], scanHits, runs);
  const encryptedRun = measure([encrypted], encryptedHits, runs);
  const periods = new Set(rollingHits.map((knock) => derived.periodAt(knock.time))).size;
  if (fixedRun.opens !== Math.floor(count / 4)) throw new Error(`the fixed door opened ${fixedRun.opens} times, not ${Math.floor(count / 4)}`);
  // Once per period (the rest are replays); a sequence knocked across a period boundary is its period's too.
  if (rollingRun.opens < periods - 1 || rollingRun.opens > periods) throw new Error(`the rolling door opened ${rollingRun.opens} times in ${periods} periods`);
  if (encryptedRun.opens !== genuine) throw new Error(`only ${encryptedRun.opens} of ${genuine} genuine messages opened`);
  return {
    hits: count,
    runs,
    fixedNsPerHit: fixedRun.nsPerHit,
    rollingNsPerHit: rollingRun.nsPerHit,
    rollingVsFixed: rollingRun.nsPerHit / fixedRun.nsPerHit,
    rollingScanNsPerHit: scanRun.nsPerHit,
    encryptedNsPerHit: encryptedRun.nsPerHit,
    opens: { fixed: fixedRun.opens, rolling: rollingRun.opens, encrypted: encryptedRun.opens },
  };
}
