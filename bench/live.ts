/**
 * The live daemon (`node dist/src/cli.js -c CONF`, file mode) following a log that grows by 50,000 lines/s.
 *
 * Latency: 1,000 knocks on a one-step door, one every 10 ms, each from its own address in 198.18.0.0/15 (the
 * benchmarking range), so the address is the knock's sequence number. The door's start command is
 * `date "+%s%N %IP%" >> started`: it writes the wall-clock time it ran with the address, and the latency of
 * knock k is that time minus the moment the line was appended (taken just before the write). It therefore
 * includes reading, parsing, matching, spawning /bin/sh and the exec of `date` (measured separately as
 * `commandSpawnMs`). The measured knocks follow one second of the same traffic whose 100 knocks are not
 * counted: the first knocks after start-up also pay for compiling the code they run (reported apart).
 *
 * Collector: the same with 100 files, one per firewall (`FirewallLog = …/remote/{firewall}/kern.log`), each
 * growing by 1,000 lines/s; knock k goes to file k mod 100 and its command also writes %FIREWALL%, which must be the
 * firewall of that file. Each file gets one write per 10 lines or so, as a collector's rsyslog batches them.
 *
 * Memory: RSS at idle, then the peak while 1,000,000 distinct sources each knock the first port of a
 * three-step door (a spoofed flood: MaxSources caps what is kept), written as fast as the disk takes them.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { corpusConfig } from './throughput.js';
import { logBody, type Packet, packets, rfc3339Stamp } from './generate.js';
import { cpuMs, DaemonProcess, median, percentile, procStatusKb, sleep, waitFor, wallClockMs } from './harness.js';

const LATENCY_PORT = 7100;
const FLOOD_PORT = 7500;
const MARKER_PORT = 7200;

/**
 * The corpus doors plus the benchmark's own; file mode, state, cursors and the log in `dir`. The corpus doors open
 * now and then in the live runs: their iptables commands become `:` (a command is still spawned for each open),
 * since a benchmark must not change this host's firewall.
 */
function daemonConfig(dir: string, doors: string, firewallLog: string): string {
  const config = corpusConfig().replace(
    '[options]\n',
    `[options]\n\tFirewallLog = ${firewallLog}\n\tStateDir = ${join(dir, 'state')}\n\tLogFile = ${join(dir, 'knocktail.log')}\n`,
  ) + doors;
  return config.replace(/^(\s*(?:start|stop)_command(?:_6)?\s*=).*\bip6?tables\b.*$/gm, '$1 :');
}

/** The followed files: `fw.log`, or one per firewall as a collector writes them (firewall i is 10.200.i.1). */
function followedFiles(dir: string, files: number): { firewallLog: string; paths: string[]; firewalls: string[] } {
  mkdirSync(dir, { recursive: true });
  if (files === 1) return { firewallLog: join(dir, 'fw.log'), paths: [join(dir, 'fw.log')], firewalls: [''] };
  const firewalls = Array.from({ length: files }, (_, i) => `10.200.${i}.1`);
  for (const firewall of firewalls) mkdirSync(join(dir, 'remote', firewall), { recursive: true });
  return { firewallLog: join(dir, 'remote', '{firewall}', 'kern.log'), paths: firewalls.map((firewall) => join(dir, 'remote', firewall, 'kern.log')), firewalls };
}

export async function startDaemon(dir: string, doors: string, files = 1): Promise<DaemonProcess> {
  const { firewallLog, paths } = followedFiles(dir, files);
  for (const path of paths) writeFileSync(path, '');
  const conf = join(dir, 'live.conf');
  writeFileSync(conf, daemonConfig(dir, doors, firewallLog));
  const daemon = new DaemonProcess(conf, { logFile: join(dir, 'knocktail.log') });
  await daemon.ready;
  return daemon;
}

/** The start of a kernel line as Debian 12's rsyslog writes it (RFC 3339 stamp with µs) at the moment `ms`. */
export function kernelPrefix(ms: number): string {
  return `${rfc3339Stamp(ms)} host kernel: [${(ms / 1000 - 1.7e9).toFixed(6)}] `;
}

export function knockBody(src: string, dport: number, sport: number): string {
  const p: Packet = { time: 0, knock: true, v6: src.includes(':'), udp: false, src, dst: src.includes(':') ? '2001:0db8:0000:0000:0000:0000:0000:0001' : '203.0.113.1', sport, dport, ttl: 64, id: sport, window: 64240, mac: '52:54:00:12:34:56:02:00:00:00:00:01:08:00' };
  return logBody(p, 'knock: ');
}

export interface LatencyResult {
  knocks: number;
  recorded: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  /** Lines per second actually appended around the knocks, and how many in all. */
  noiseLinesPerSecond: number;
  linesWritten: number;
  durationMs: number;
  /** CPU the daemon used over the run, in % of one core. */
  daemonCpuPercent: number;
  /** Median time from spawn() of `/bin/sh -c 'date +%s%N'` in Node to `date` reading the clock: part of every latency. */
  commandSpawnMs: number;
  /** Files followed, ms between two knocks, and the daemon's RSS at the end of the run and its peak (VmHWM), MB. */
  files: number;
  knockEveryMs: number;
  daemonRssMb: number;
  daemonPeakRssMb: number;
  /** The warm-up knocks (not counted above): the very first one, and the slowest. */
  firstKnockMs: number;
  warmupMaxMs: number;
}

/** Knocks sent before the measured ones (one second's worth at a knock every 10 ms). */
const WARMUP_KNOCKS = 100;
/** With many files, each is written once this many of its lines are due (about every 10 ms at 1,000 lines/s). */
const BATCH_LINES = 10;

/**
 * `files` = 1: the single followed file. More: a collector's files, `noisePerSecond` spread evenly over them, each
 * written once at least `BATCH_LINES` of its lines are due (and whenever its knock is).
 */
export async function liveLatency(dir: string, knocks: number, noisePerSecond: number, files = 1, knockEveryMs = 10): Promise<LatencyResult> {
  const started = join(dir, 'started');
  const { paths, firewalls } = followedFiles(dir, files);
  const daemon = await startDaemon(dir, `
[benchLatency]
	sequence      = ${LATENCY_PORT}
	tcpflags      = syn
	start_command = date "+%s%N %IP%${files > 1 ? ' %FIREWALL%' : ''}" >> ${started}
`, files);
  try {
    // The noise: corpus lines (a quarter of them partial knocks on the corpus doors' ports), bodies made beforehand.
    const pool: string[] = [];
    for (const p of packets()) {
      if (p.dport === LATENCY_PORT) continue;
      pool.push(logBody(p, p.knock ? 'knock: ' : 'drop: '));
      if (pool.length === noisePerSecond) break;
    }
    const total = WARMUP_KNOCKS + knocks;
    const appendedAt = new Float64Array(total);
    const fds = paths.map((path) => openSync(path, 'a'));
    const batch = files === 1 ? 1 : BATCH_LINES;
    const written = new Array<number>(files).fill(0);
    let next = 0;
    const cpuBefore = cpuMs(daemon.pid);
    const t0 = performance.now();
    try {
      while (next < total) {
        const elapsed = performance.now() - t0;
        const duePerFile = Math.floor(((elapsed / 1000) * noisePerSecond) / files);
        const prefix = kernelPrefix(wallClockMs());
        // Every knock whose time has come, also when the writer fell behind: the run lasts as long as planned.
        const knocksDue = Math.min(total, Math.floor(elapsed / knockEveryMs) + 1);
        for (let f = 0; f < files; f++) {
          const knocksHere: number[] = [];
          for (let knock = next; knock < knocksDue; knock++) if (knock % files === f) knocksHere.push(knock);
          if (knocksHere.length === 0 && duePerFile - written[f]! < batch) continue;
          const parts: string[] = [];
          for (; written[f]! < duePerFile; written[f]!++) parts.push(prefix + pool[(written[f]! * files + f) % pool.length]!);
          // The knocks go last: everything appended before them has to be read first.
          for (const knock of knocksHere) parts.push(prefix + knockBody(`198.18.${knock >> 8}.${knock & 255}`, LATENCY_PORT, 40000 + (knock % 20000)));
          const at = wallClockMs();
          for (const knock of knocksHere) appendedAt[knock] = at;
          if (parts.length > 0) writeSync(fds[f]!, `${parts.join('\n')}\n`);
        }
        next = Math.max(next, knocksDue);
        await sleep(1);
      }
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    const noiseWritten = written.reduce((a, b) => a + b, 0);
    const durationMs = performance.now() - t0;
    const cpu = cpuMs(daemon.pid) - cpuBefore;
    const startedLines = (): string[] => (existsSync(started) ? readFileSync(started, 'utf8').split('\n').filter((l) => l !== '') : []);
    const recorded = await waitFor('the start commands of every knock', 30_000, () => {
      const lines = startedLines();
      return lines.length >= total ? lines : undefined;
    }, 20).catch(startedLines);
    const latencies: number[] = [];
    const warmup = new Float64Array(WARMUP_KNOCKS);
    for (const line of recorded) {
      const [ns, ip, firewall] = line.split(' ');
      const octets = ip!.split('.').map(Number);
      const knock = (octets[2]! << 8) | octets[3]!;
      if (files > 1 && firewall !== firewalls[knock % files]) throw new Error(`knock ${knock} was written to ${paths[knock % files]}, but its command ran for firewall ${firewall}`);
      const latency = Number(BigInt(ns!) / 1000n) / 1000 - appendedAt[knock]!;
      if (knock < WARMUP_KNOCKS) warmup[knock] = latency;
      else latencies.push(latency);
    }
    if (recorded.length < total) throw new Error(`only ${recorded.length} of ${total} knocks ran their command within 30 s: ${daemon.errors.slice(-1000)}`);
    return {
      knocks,
      recorded: latencies.length,
      p50Ms: median(latencies),
      p99Ms: percentile(latencies, 99),
      maxMs: Math.max(...latencies),
      meanMs: latencies.reduce((a, b) => a + b, 0) / latencies.length,
      noiseLinesPerSecond: (noiseWritten / durationMs) * 1000,
      linesWritten: noiseWritten + total,
      durationMs,
      daemonCpuPercent: (cpu / durationMs) * 100,
      commandSpawnMs: commandSpawnMs(),
      files,
      knockEveryMs,
      daemonRssMb: procStatusKb(daemon.pid, 'VmRSS') / 1024,
      daemonPeakRssMb: procStatusKb(daemon.pid, 'VmHWM') / 1024,
      firstKnockMs: warmup[0]!,
      warmupMaxMs: Math.max(...warmup),
    };
  } finally {
    await daemon.stop();
  }
}

/** What spawning `/bin/sh -c 'date +%s%N'` costs until date reads the clock (median of 30). */
function commandSpawnMs(): number {
  const samples: number[] = [];
  for (let i = 0; i < 30; i++) {
    const before = wallClockMs();
    const out = spawnSync('/bin/sh', ['-c', 'date +%s%N'], { encoding: 'utf8' }).stdout.trim();
    samples.push(Number(BigInt(out) / 1000n) / 1000 - before);
  }
  return median(samples);
}

export interface MemoryResult {
  /** RSS after start-up and 2 s of idling, MB. */
  idleRssMb: number;
  sources: number;
  /** Peak RSS (VmHWM) by the end of the flood, MB. */
  floodPeakRssMb: number;
  /** RSS once the flood has been processed, MB. */
  afterFloodRssMb: number;
  /** How fast the daemon took in the flood (it was written faster than that). */
  floodLinesPerSecond: number;
  floodMs: number;
}

/** The i-th flood source: 95 % IPv4 in 10.0.0.0/8, 5 % IPv6 in 2001:db8::/32, all distinct. */
export function floodSource(i: number): string {
  if (i % 20 === 19) return `2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`;
  return `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
}

export async function memory(dir: string, sources: number): Promise<MemoryResult> {
  const done = join(dir, 'done');
  const daemon = await startDaemon(dir, `
[benchFlood]
	sequence      = ${FLOOD_PORT},8000,9000
	seq_timeout   = 5
	tcpflags      = syn
	start_command = /usr/sbin/iptables -I INPUT -s %IP% -p tcp --dport 22 -j ACCEPT

[benchMarker]
	sequence      = ${MARKER_PORT}
	start_command = : > ${done}
`);
  try {
    await sleep(2000);
    const idleRssMb = procStatusKb(daemon.pid, 'VmRSS') / 1024;
    const fd = openSync(join(dir, 'fw.log'), 'a');
    const t0 = performance.now();
    try {
      let parts: string[] = [];
      let prefix = kernelPrefix(wallClockMs());
      for (let i = 0; i < sources; i++) {
        parts.push(prefix + knockBody(floodSource(i), FLOOD_PORT, 1024 + (i % 64000)));
        if (parts.length === 4096) {
          writeSync(fd, `${parts.join('\n')}\n`);
          parts = [];
          prefix = kernelPrefix(wallClockMs());
        }
      }
      parts.push(kernelPrefix(wallClockMs()) + knockBody('198.18.255.255', MARKER_PORT, 40000));
      writeSync(fd, `${parts.join('\n')}\n`);
    } finally {
      closeSync(fd);
    }
    await waitFor('the daemon to take in the flood', 120_000, () => (existsSync(done) ? true : undefined), 10);
    const floodMs = performance.now() - t0;
    const floodPeakRssMb = procStatusKb(daemon.pid, 'VmHWM') / 1024;
    await sleep(1000);
    return {
      idleRssMb,
      sources,
      floodPeakRssMb,
      afterFloodRssMb: procStatusKb(daemon.pid, 'VmRSS') / 1024,
      floodLinesPerSecond: ((sources + 1) / floodMs) * 1000,
      floodMs,
    };
  } finally {
    await daemon.stop();
  }
}
