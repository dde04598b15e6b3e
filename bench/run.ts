/**
 * `npm run bench`: every benchmark of issue 6 on inputs generated on the fly, a table with the targets and
 * whether each holds, and bench/results.json. Not part of `npm test`.
 *
 *   node dist/bench/run.js [--only replay,pcap,live,collector,memory,flood,startup,knocks,matcher] [--quick] [--knock-every MS]
 *
 * --quick shrinks every input tenfold and runs once (a smoke test of the benchmark itself). Only a full run
 * (every benchmark, full size, knocks every 10 ms) replaces results.json, so it always holds one complete, comparable set.
 * --knock-every MS spaces the live and collector knocks further apart: each one spawns a command, and where a
 * spawn costs more than 10 ms (a busy VM) commands queue up and the latency measures that queue.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, withScratch } from './harness.js';
import { knockFlood, type KnockFloodResult } from './knocks.js';
import { type FloodResult, floodBeyondMaxSources } from './flood.js';
import { type LatencyResult, liveLatency, memory, type MemoryResult } from './live.js';
import { matcherCost, type MatcherResult } from './matcher.js';
import { type StartupResult, startup } from './startup.js';
import { type PcapResult, pcapThroughput, replayThroughput, type ReplayResult } from './throughput.js';

const BENCHMARKS = ['replay', 'pcap', 'live', 'collector', 'memory', 'flood', 'startup', 'knocks', 'matcher'] as const;
type Benchmark = (typeof BENCHMARKS)[number];

interface Sizes {
  lines: number;
  fail2banLines: number;
  packets: number;
  runs: number;
  knocks: number;
  noisePerSecond: number;
  /** The collector: files followed, each growing by this many lines/s. */
  collectorFiles: number;
  collectorLinesPerFile: number;
  floodSources: number;
  /** The paced flood beyond MaxSources: distinct sources, and lines per second. */
  pacedFloodSources: number;
  pacedFloodRate: number;
  startups: number;
  encryptedKnocks: number;
  matcherHits: number;
}

const FULL: Sizes = { lines: 1_000_000, fail2banLines: 1_000_000, packets: 1_000_000, runs: 3, knocks: 1000, noisePerSecond: 50_000, collectorFiles: 100, collectorLinesPerFile: 1000, floodSources: 1_000_000, pacedFloodSources: 1_000_000, pacedFloodRate: 100_000, startups: 10, encryptedKnocks: 1_000_000, matcherHits: 1_000_000 };
const QUICK: Sizes = { lines: 100_000, fail2banLines: 20_000, packets: 100_000, runs: 1, knocks: 100, noisePerSecond: 50_000, collectorFiles: 10, collectorLinesPerFile: 1000, floodSources: 100_000, pacedFloodSources: 200_000, pacedFloodRate: 100_000, startups: 3, encryptedKnocks: 100_000, matcherHits: 100_000 };

/** The targets of issue 6 (2-core machine). */
const TARGETS = {
  replayLinesPerSecond: 1_000_000,
  replayVsFail2ban: 20,
  liveP99Ms: 20,
  pcapPacketsPerSecond: 1_000_000,
  floodRssMb: 150,
  idleRssMb: 60,
  startupMs: 300,
  /** Issue 16: legitimate sequences under a flood beyond MaxSources all open, with no growing lag. */
  floodP99Ms: 100,
  /** Issue 12: a rolling door's per-hit cost within a small factor of a fixed door's. */
  rollingVsFixed: 3,
};

interface Results {
  replay?: ReplayResult;
  pcap?: PcapResult;
  live?: LatencyResult;
  collector?: LatencyResult;
  /** The same lines, knocks and command into one file: what following many files costs, at the same rate. */
  collectorOneFile?: LatencyResult;
  memory?: MemoryResult;
  flood?: FloodResult;
  startup?: StartupResult;
  knocks?: KnockFloodResult;
  matcher?: MatcherResult;
}

interface Check {
  what: string;
  result: string;
  target: string;
  holds: boolean | null;
}

const count = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number): string => (n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(n < 10 ? 2 : 0)} ms`);
const mb = (n: number): string => `${n.toFixed(1)} MB`;

function checks(r: Results): Check[] {
  const rows: Check[] = [];
  if (r.replay) {
    const x = r.replay;
    rows.push({ what: `replay, ${count(x.lines)} iptables lines`, result: `${count(x.linesPerSecond)} lines/s (${ms(x.wallMs)})`, target: `>= ${count(TARGETS.replayLinesPerSecond)} lines/s`, holds: x.linesPerSecond >= TARGETS.replayLinesPerSecond });
    rows.push({ what: '  baseline: read + split in Node', result: `${count(x.baselineSplit.linesPerSecond)} lines/s (${ms(x.baselineSplit.wallMs)})`, target: `replay = ${(x.ofBaseline * 100).toFixed(0)} % of it`, holds: null });
    rows.push({ what: '  baseline: node:readline', result: `${count(x.baselineReadline.linesPerSecond)} lines/s (${ms(x.baselineReadline.wallMs)})`, target: '', holds: null });
    if ('skipped' in x.fail2ban) {
      rows.push({ what: '  fail2ban-regex', result: `skipped: ${x.fail2ban.skipped}`, target: `replay >= ${TARGETS.replayVsFail2ban}x`, holds: null });
    } else {
      const f = x.fail2ban;
      rows.push({
        what: `  ${f.version}`,
        result:
          f.lines === x.lines
            ? `${count(f.linesPerSecond)} lines/s (the same ${count(f.lines)} lines in ${ms(f.wallMs)})`
            : `${count(f.linesPerSecond)} lines/s (${count(f.lines)}-line subset in ${ms(f.wallMs)}; scaled to ${count(x.lines)}: ${ms(f.scaledWallMsFor)})`,
        target: '',
        holds: null,
      });
      rows.push({ what: '  replay vs fail2ban-regex', result: `${x.vsFail2ban!.toFixed(1)}x`, target: `>= ${TARGETS.replayVsFail2ban}x`, holds: x.vsFail2ban! >= TARGETS.replayVsFail2ban });
    }
  }
  if (r.pcap) {
    const x = r.pcap;
    rows.push({ what: `replay, pcap of ${count(x.packets)} packets`, result: `${count(x.packetsPerSecond)} packets/s (${ms(x.wallMs)})`, target: `>= ${count(TARGETS.pcapPacketsPerSecond)} packets/s`, holds: x.packetsPerSecond >= TARGETS.pcapPacketsPerSecond });
    rows.push({ what: '  baseline: raw record walk', result: `${count(x.rawRead.packetsPerSecond)} packets/s (${ms(x.rawRead.wallMs)})`, target: `replay = ${(x.ofRawRead * 100).toFixed(0)} % of it`, holds: null });
  }
  if (r.live) {
    const x = r.live;
    rows.push({ what: `live latency, ${count(x.knocks)} knocks${every(x)}`, result: `p50 ${ms(x.p50Ms)}, p99 ${ms(x.p99Ms)}, max ${ms(x.maxMs)}`, target: `p99 <= ${TARGETS.liveP99Ms} ms`, holds: x.p99Ms <= TARGETS.liveP99Ms });
    rows.push(...appendingRows(x));
    rows.push({ what: '  of which sh + date start', result: `${ms(x.commandSpawnMs)} (median, measured apart)`, target: '', holds: null });
    rows.push({ what: '  first knocks after start-up', result: `first ${ms(x.firstKnockMs)}, slowest of 100 ${ms(x.warmupMaxMs)} (not counted)`, target: '', holds: null });
  }
  for (const x of [r.collector, r.collectorOneFile]) {
    if (x === undefined) continue;
    const where = x.files === 1 ? '  the same into one file' : `collector latency, ${count(x.knocks)} knocks over ${x.files} files`;
    rows.push({ what: `${where}${every(x)}`, result: `p50 ${ms(x.p50Ms)}, p99 ${ms(x.p99Ms)}, max ${ms(x.maxMs)}`, target: '', holds: null });
    rows.push(...appendingRows(x));
  }
  if (r.memory) {
    const x = r.memory;
    rows.push({ what: 'RSS, idle daemon', result: mb(x.idleRssMb), target: `<= ${TARGETS.idleRssMb} MB`, holds: x.idleRssMb <= TARGETS.idleRssMb });
    rows.push({ what: `RSS peak, flood of ${count(x.sources)} sources`, result: `${mb(x.floodPeakRssMb)} (after: ${mb(x.afterFloodRssMb)})`, target: `<= ${TARGETS.floodRssMb} MB`, holds: x.floodPeakRssMb <= TARGETS.floodRssMb });
    rows.push({ what: '  flood taken in at', result: `${count(x.floodLinesPerSecond)} lines/s (${ms(x.floodMs)})`, target: '', holds: null });
  }
  if (r.flood) {
    const x = r.flood;
    const lagMs = (lines: number): string => ms((lines / x.targetLinesPerSecond) * 1000);
    rows.push({
      what: `flood of ${count(x.sources)} sources at ${count(x.targetLinesPerSecond)} lines/s`,
      result: `${x.opened}/${x.sequences} sequences opened, p50 ${ms(x.p50Ms)}, p99 ${ms(x.p99Ms)}, max ${ms(x.maxMs)}`,
      target: `all, p99 <= ${TARGETS.floodP99Ms} ms`,
      holds: x.opened === x.sequences && x.p99Ms <= TARGETS.floodP99Ms,
    });
    rows.push({
      what: '  lag behind the writer',
      result: `max ${count(x.maxLagLines)} lines (${lagMs(x.maxLagLines)}); first quarter ${count(x.lagFirstQuarterLines)}, last ${count(x.lagLastQuarterLines)}`,
      target: 'not growing',
      holds: x.lagLastQuarterLines <= Math.max(x.lagFirstQuarterLines * 2, x.targetLinesPerSecond / 10),
    });
    rows.push({ what: '  written at; evicted', result: `${count(x.writtenLinesPerSecond)} lines/s; ${count(x.evicted)} sources evicted; daemon CPU ${x.daemonCpuPercent.toFixed(0)} %, peak RSS ${mb(x.peakRssMb)}`, target: '', holds: null });
    rows.push({ what: '  matcher alone, per hit', result: `admission ${x.admissionUsPerHit.toFixed(2)} µs, with eviction ${x.evictionUsPerHit.toFixed(2)} µs`, target: 'eviction <= admission', holds: x.evictionUsPerHit <= x.admissionUsPerHit * 1.1 });
  }
  if (r.startup) {
    const x = r.startup;
    rows.push({ what: 'start-up to "listening on"', result: `${ms(x.medianMs)} median of ${x.runs} (${ms(x.minMs)}-${ms(x.maxMs)})`, target: `<= ${TARGETS.startupMs} ms`, holds: x.medianMs <= TARGETS.startupMs });
    rows.push({ what: '  bare node printing a line', result: ms(x.bareNodeMs), target: '', holds: null });
  }
  if (r.knocks) {
    const x = r.knocks;
    rows.push({ what: `encrypted knocks: ${count(x.knocks)} random knocks on a 2^15 span`, result: `${x.floodNsPerKnock.toFixed(0)} ns/knock (${x.opened} of ${x.genuine} messages among them opened)`, target: '', holds: null });
    rows.push({ what: '  baseline: span lookup alone', result: `${x.lookupNsPerKnock.toFixed(0)} ns/knock`, target: '', holds: null });
    rows.push({ what: '  every source knocks a sync value first', result: `${x.syncedNsPerKnock.toFixed(0)} ns/knock (the search runs at every knock)`, target: '', holds: null });
  }
  if (r.matcher) {
    const x = r.matcher;
    rows.push({ what: `matcher, ${count(x.hits)} hits: fixed door`, result: `${x.fixedNsPerHit.toFixed(0)} ns/hit (4-knock sequences, ${count(x.opens.fixed)} opens)`, target: '', holds: null });
    rows.push({
      what: '  rolling door, the same sequences',
      result: `${x.rollingNsPerHit.toFixed(0)} ns/hit = ${x.rollingVsFixed.toFixed(2)}x fixed (${x.opens.rolling} opens, the rest refused replays)`,
      target: `<= ${TARGETS.rollingVsFixed}x fixed`,
      holds: x.rollingVsFixed <= TARGETS.rollingVsFixed,
    });
    rows.push({ what: '  rolling door, random knocks on its range', result: `${x.rollingScanNsPerHit.toFixed(0)} ns/hit`, target: '', holds: null });
    rows.push({ what: '  encrypted door, random knocks on a 2^15 span', result: `${x.encryptedNsPerHit.toFixed(0)} ns/hit (${x.opens.encrypted} genuine messages among them opened)`, target: '', holds: null });
  }
  return rows;
}

/** ", one every N ms" when the knocks were not 10 ms apart. */
function every(x: LatencyResult): string {
  return x.knockEveryMs === 10 ? '' : `, one every ${x.knockEveryMs} ms`;
}

/** What the daemon did while a live benchmark appended: the lines, its CPU, its memory. */
function appendingRows(x: LatencyResult): Check[] {
  const where = x.files === 1 ? 'one file' : `${x.files} files`;
  return [
    { what: '  while appending', result: `${count(x.noiseLinesPerSecond)} other lines/s to ${where}; daemon CPU ${x.daemonCpuPercent.toFixed(0)} % of a core`, target: '', holds: null },
    { what: '  daemon RSS', result: `${mb(x.daemonRssMb)} at the end, peak ${mb(x.daemonPeakRssMb)}`, target: '', holds: null },
  ];
}

function table(rows: Check[]): string {
  const header: Check = { what: 'benchmark', result: 'result', target: 'target', holds: null };
  const all = [header, ...rows];
  const width = (key: 'what' | 'result' | 'target'): number => Math.max(...all.map((row) => row[key].length));
  const [w1, w2, w3] = [width('what'), width('result'), width('target')];
  const line = (row: Check, mark: string): string => `${row.what.padEnd(w1)}  ${row.result.padEnd(w2)}  ${row.target.padEnd(w3)}  ${mark}`.trimEnd();
  return [line(header, 'holds'), '-'.repeat(w1 + w2 + w3 + 11), ...rows.map((row) => line(row, row.holds === null ? '' : row.holds ? 'yes' : 'NO'))].join('\n');
}

function machine() {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGb: Number((totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    kernel: release(),
    loadAverageAtStart: loadavg().map((n) => Number(n.toFixed(2))),
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { only: { type: 'string' }, quick: { type: 'boolean', default: false }, 'knock-every': { type: 'string', default: '10' }, help: { type: 'boolean', short: 'h', default: false } } });
  if (values.help) {
    process.stdout.write(`usage: node dist/bench/run.js [--only ${BENCHMARKS.join(',')}] [--quick] [--knock-every MS]\n`);
    return 0;
  }
  const knockEveryMs = Number(values['knock-every']);
  if (!Number.isInteger(knockEveryMs) || knockEveryMs < 1) {
    process.stderr.write(`--knock-every takes whole milliseconds, not ${values['knock-every']}\n`);
    return 2;
  }
  const selected = [...new Set(values.only?.split(',').map((name) => name.trim()) ?? BENCHMARKS)] as Benchmark[];
  const unknown = selected.filter((name) => !BENCHMARKS.includes(name));
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; choose from ${BENCHMARKS.join(', ')}\n`);
    return 2;
  }
  const sizes = values.quick ? QUICK : FULL;
  const info = machine();
  const started = new Date();
  process.stdout.write(`knocktail benchmarks, ${started.toISOString()}: ${info.cpu} (${info.cores} cores), ${info.memoryGb} GB, Node ${info.node}, Linux ${info.kernel}, load ${info.loadAverageAtStart.join(' ')}${values.quick ? ' (--quick: sizes / 10, not saved)' : selected.length < BENCHMARKS.length || knockEveryMs !== 10 ? ' (partial run, not saved)' : ''}\n`);
  const results: Results = {};
  const run: Record<Benchmark, (dir: string) => Promise<void>> = {
    replay: async (dir) => void (results.replay = await replayThroughput(dir, sizes.lines, sizes.runs, sizes.fail2banLines)),
    pcap: async (dir) => void (results.pcap = await pcapThroughput(dir, sizes.packets, sizes.runs)),
    live: async (dir) => void (results.live = await liveLatency(dir, sizes.knocks, sizes.noisePerSecond, 1, knockEveryMs)),
    collector: async (dir) => {
      const rate = sizes.collectorFiles * sizes.collectorLinesPerFile;
      results.collector = await liveLatency(join(dir, 'files'), sizes.knocks, rate, sizes.collectorFiles, knockEveryMs);
      results.collectorOneFile = await liveLatency(join(dir, 'one'), sizes.knocks, rate, 1, knockEveryMs);
    },
    memory: async (dir) => void (results.memory = await memory(dir, sizes.floodSources)),
    flood: async (dir) => void (results.flood = await floodBeyondMaxSources(dir, sizes.pacedFloodSources, sizes.pacedFloodRate)),
    startup: async (dir) => void (results.startup = await startup(dir, sizes.startups)),
    knocks: async () => void (results.knocks = knockFlood(sizes.encryptedKnocks, sizes.runs)),
    matcher: async () => void (results.matcher = matcherCost(sizes.matcherHits, sizes.runs)),
  };
  for (const name of BENCHMARKS.filter((b) => selected.includes(b))) {
    const t0 = performance.now();
    process.stdout.write(`running ${name}…`);
    await withScratch((dir) => run[name](dir));
    process.stdout.write(` ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const rows = checks(results);
  process.stdout.write(`\n${table(rows)}\n`);
  const missed = rows.filter((row) => row.holds === false);
  process.stdout.write(missed.length === 0 ? '\nevery target holds\n' : `\ntarget missed: ${missed.map((row) => row.what.trim()).join('; ')}\n`);
  if (!values.quick && selected.length === BENCHMARKS.length && knockEveryMs === 10) {
    const file = join(repoRoot, 'bench', 'results.json');
    writeFileSync(file, `${JSON.stringify({ date: started.toISOString(), machine: info, sizes, targets: TARGETS, results, checks: rows }, null, 2)}\n`);
    process.stdout.write(`written to ${file}\n`);
  }
  return 0;
}

process.exitCode = await main().catch((error: Error) => {
  process.stderr.write(`\nbenchmark failed: ${error.stack ?? error.message}\n`);
  return 1;
});
