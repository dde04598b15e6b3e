/**
 * A spoofed flood beyond MaxSources, paced: the live daemon (file mode, MaxSources at its default of 100,000)
 * follows a log into which 1,000,000 distinct sources each knock the first port of a three-step door, at
 * 100,000 lines/s, so that from the first second on every new source evicts the oldest fresh one. Meanwhile
 * legitimate sequences knock the same door, one every 100 ms from their own address, their steps 200 ms apart
 * (a first knock must survive 400 ms of flood, 40,000 evictions, for its sequence to finish).
 *
 * Measured: how far the daemon's reading is behind the writer (sampled from `status` every 500 ms: lines
 * written minus lines read), whether every legitimate sequence opened, and the latency of each open (from the
 * append of the third knock to the start command's `date`); the daemon's CPU and peak RSS. Beside it, the
 * matcher alone in this process: what a hit costs while sources are admitted (below MaxSources) and while
 * each one evicts another.
 */
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { defaultDoor } from '../src/config/parse.js';
import { requestStatus } from '../src/daemon/control.js';
import type { KnockHit } from '../src/hit.js';
import { Matcher } from '../src/matcher/matcher.js';
import { cpuMs, median, percentile, procStatusKb, sleep, waitFor, wallClockMs } from './harness.js';
import { floodSource, kernelPrefix, knockBody, startDaemon } from './live.js';
import { MemoryOneTimeFiles } from '../src/matcher/one-time-files.js';
import { MemoryUsedKnocks } from '../src/knocks/used.js';

const FIRST_PORT = 7500;
const LEGIT_EVERY_MS = 100;
const STEP_GAP_MS = 200;
const SAMPLE_EVERY_MS = 500;

export interface FloodResult {
  sources: number;
  targetLinesPerSecond: number;
  writtenLinesPerSecond: number;
  durationMs: number;
  sequences: number;
  opened: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Lines written but not yet read, sampled every 250 ms: the largest, and the mean of the first and last quarter. */
  maxLagLines: number;
  lagFirstQuarterLines: number;
  lagLastQuarterLines: number;
  evicted: number;
  daemonCpuPercent: number;
  peakRssMb: number;
  /** The matcher alone, µs per hit: admitting new sources below MaxSources, and each one evicting another. */
  admissionUsPerHit: number;
  evictionUsPerHit: number;
}

export async function floodBeyondMaxSources(dir: string, sources: number, linesPerSecond: number): Promise<FloodResult> {
  const matcher = matcherCost(Math.min(sources, 1_000_000));
  const started = join(dir, 'started');
  const stateDir = join(dir, 'state');
  const daemon = await startDaemon(dir, `
[benchFlood]
	sequence      = ${FIRST_PORT},8000,9000
	seq_timeout   = 5
	tcpflags      = syn
	start_command = date "+%s%N %IP%" >> ${started}
`);
  try {
    const durationTarget = (sources / linesPerSecond) * 1000;
    const sequences = Math.floor((durationTarget - 2 * STEP_GAP_MS) / LEGIT_EVERY_MS);
    const thirdAppendedAt = new Float64Array(sequences);
    const schedule: Array<{ due: number; k: number; s: number }> = [];
    for (let k = 0; k < sequences; k++) for (let s = 0; s < 3; s++) schedule.push({ due: k * LEGIT_EVERY_MS + s * STEP_GAP_MS, k, s });
    schedule.sort((a, b) => a.due - b.due);
    const lags: number[] = [];
    const statusErrors: string[] = [];
    const fd = openSync(join(dir, 'fw.log'), 'a');
    let written = 0;
    let flooded = 0;
    let nextStep = 0;
    let sampling = false;
    // The flood lines differ only in their source: made from a template, so that the writer keeps the pace.
    const [floodHead, floodTail] = knockBody('SOURCE', FIRST_PORT, 40000).split('SOURCE') as [string, string];
    const cpuBefore = cpuMs(daemon.pid);
    const t0 = performance.now();
    let nextSample = SAMPLE_EVERY_MS;
    try {
      while (flooded < sources || nextStep < schedule.length) {
        const elapsed = performance.now() - t0;
        const prefix = kernelPrefix(wallClockMs());
        const parts: string[] = [];
        // At most 10 ms worth at a time: a writer that fell behind must not make bursts the daemon would see as floods of their own.
        const due = Math.min(sources, Math.floor((elapsed / 1000) * linesPerSecond), flooded + linesPerSecond / 100);
        for (; flooded < due; flooded++) parts.push(prefix + floodHead + floodSource(flooded) + floodTail);
        // Legitimate steps, in time order: sequence k's step s is due at k * 100 ms + s * 200 ms.
        const thirds: number[] = [];
        for (; nextStep < schedule.length && schedule[nextStep]!.due <= elapsed; nextStep++) {
          const { k, s } = schedule[nextStep]!;
          parts.push(prefix + knockBody(`198.18.${k >> 8}.${k & 255}`, [FIRST_PORT, 8000, 9000][s]!, 40000 + k));
          if (s === 2) thirds.push(k);
        }
        if (parts.length > 0) {
          const at = wallClockMs();
          writeSync(fd, `${parts.join('\n')}\n`);
          written += parts.length;
          for (const k of thirds) thirdAppendedAt[k] = at;
        }
        if (elapsed >= nextSample && !sampling) {
          nextSample += SAMPLE_EVERY_MS;
          sampling = true;
          const writtenThen = written;
          requestStatus(stateDir)
            .then((status) => lags.push(writtenThen - status.counters.linesRead))
            .catch((error: Error) => statusErrors.push(error.message))
            .finally(() => (sampling = false));
        }
        await sleep(1);
      }
    } finally {
      closeSync(fd);
    }
    const durationMs = performance.now() - t0;
    const startedLines = (): string[] => (existsSync(started) ? readFileSync(started, 'utf8').split('\n').filter((line) => line !== '') : []);
    const recorded = await waitFor('the start commands of every sequence', 60_000, () => {
      const lines = startedLines();
      return lines.length >= sequences ? lines : undefined;
    }, 20).catch(startedLines);
    const cpu = cpuMs(daemon.pid) - cpuBefore;
    const status = await requestStatus(stateDir);
    const latencies = recorded.map((line) => {
      const [ns, ip] = line.split(' ');
      const octets = ip!.split('.').map(Number);
      return Number(BigInt(ns!) / 1000n) / 1000 - thirdAppendedAt[(octets[2]! << 8) | octets[3]!]!;
    });
    const quarter = Math.max(1, Math.floor(lags.length / 4));
    const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
    return {
      sources,
      targetLinesPerSecond: linesPerSecond,
      writtenLinesPerSecond: (written / durationMs) * 1000,
      durationMs,
      sequences,
      opened: recorded.length,
      p50Ms: median(latencies),
      p99Ms: percentile(latencies, 99),
      maxMs: Math.max(...latencies),
      maxLagLines: Math.max(0, ...lags),
      lagFirstQuarterLines: mean(lags.slice(0, quarter)),
      lagLastQuarterLines: mean(lags.slice(-quarter)),
      evicted: status.counters.evicted,
      daemonCpuPercent: (cpu / durationMs) * 100,
      peakRssMb: procStatusKb(daemon.pid, 'VmHWM') / 1024,
      ...matcher,
    };
  } finally {
    await daemon.stop();
  }
}

/**
 * The matcher alone: `sources` distinct first knocks at 100,000 per second of event time, MaxSources 100,000,
 * after a warm-up run on another matcher (so that compiling the code is not counted as admission).
 */
function matcherCost(sources: number): { admissionUsPerHit: number; evictionUsPerHit: number } {
  runMatcher(Math.min(sources, 300_000));
  return runMatcher(sources);
}

function runMatcher(sources: number): { admissionUsPerHit: number; evictionUsPerHit: number } {
  const door = { ...defaultDoor('door', { file: 'bench', line: 1 }), sequence: [FIRST_PORT, 8000, 9000].map((port) => ({ port, proto: 'tcp' as const })), seqTimeout: 5 };
  const matcher = new Matcher([door], { maxSources: 100_000, isLocal: null, oneTimeFiles: new MemoryOneTimeFiles(), usedKnocks: new MemoryUsedKnocks() }, () => undefined);
  const addresses = Array.from({ length: sources }, (_, i) => floodSource(i));
  const hit: KnockHit = { time: 0, src: '', dst: '203.0.113.1', proto: 'tcp', dport: FIRST_PORT, sport: 40000, flags: 2, input: 'bench', iface: null };
  const admitted = Math.min(100_000, sources);
  const t0 = performance.now();
  let t1 = t0;
  for (let i = 0; i < sources; i++) {
    hit.time = 1.8e12 + i / 100;
    hit.src = addresses[i]!;
    matcher.handle(hit);
    if (i === admitted - 1) t1 = performance.now();
  }
  const t2 = performance.now();
  return { admissionUsPerHit: ((t1 - t0) * 1000) / admitted, evictionUsPerHit: sources > admitted ? ((t2 - t1) * 1000) / (sources - admitted) : 0 };
}

