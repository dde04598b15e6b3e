/**
 * Knocks under a spoofed SYN flood, in network namespaces (root): `node dist/bench/netns-flood.js`.
 *
 * A client namespace floods the server namespace's first knock port (7000) with spoofed SYNs
 * (test/e2e/syn-flood.py: RATE packets/s from SOURCES distinct addresses in 172.16.0.0/12) while the stock
 * `knock` client knocks a three-step door 20 times, one sequence every 500 ms. The same door is read by
 * knocktail in each mode in turn:
 *
 *   nflog      FirewallLog = nflog:5, rule `iptables -j NFLOG --nflog-group 5 --nflog-prefix knock:` (iptables-nft:
 *              nft `log group 5` without a queue threshold, so the kernel batches messages)
 *   nflog-qt1  the same with the rule written in nft with `queue-threshold 1` (every message sent at once)
 *   pcap       Mode = pcap on the server's veth
 *   file       `-j LOG` → a private rsyslogd (imklog, or imkmsg when the host's syslog reads /proc/kmsg) → kern.log
 *
 * For each: sequences opened of 20, the latency from the knock client's exit to the start command's `date`
 * (p50, p99, max), the CPU of the daemon and its reader process (and of rsyslogd), their peak RSS, the flood
 * actually sent, and what was lost where: the inputs' `lost` from `status`, and in file mode the LOG lines the
 * rule logged (its counter) that never reached kern.log. Everything made is removed afterwards.
 *
 *   node dist/bench/netns-flood.js [--modes nflog,nflog-qt1,pcap,file] [--rate 100000] [--sources 1048576] [--json]
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { requestStatus } from '../src/daemon/control.js';
import { holdLogAllNetns, otherKmsgReader } from '../test/e2e/firewall-lab.js';
import { Lab, type Daemon } from '../test/inputs/pcap-lab.js';
import { cliPath, cpuMs, median, percentile, procStatusKb, repoRoot, sleep, withScratch } from './harness.js';

const MODES = ['nflog', 'nflog-qt1', 'pcap', 'file'] as const;
type Mode = (typeof MODES)[number];
const FLOOD = join(repoRoot, 'test', 'e2e', 'syn-flood.py');
const SEQUENCES = 20;
const WARMUP_MS = 3000;
const EVERY_MS = 500;

export interface ModeResult {
  mode: Mode;
  opened: number;
  sequences: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  floodSent: number;
  floodRate: number;
  /** CPU in % of one core over the flood: the daemon with its reader process, and rsyslogd (file mode). */
  daemonCpuPercent: number;
  rsyslogCpuPercent: number | null;
  /** Peak RSS, MB: the daemon, and its reader process (nflog, pcap). */
  daemonRssMb: number;
  readerRssMb: number | null;
  /** What the inputs said they lost (status), and in file mode LOG lines that never reached kern.log. */
  lost: string;
  loadAverage: number;
}

function sh(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr || result.stdout}`);
  return result.stdout;
}

function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((task) => readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

async function runMode(mode: Mode, rate: number, sources: number, dir: string): Promise<ModeResult> {
  const lab = new Lab('kbf', 239);
  const cleanups: Array<() => void> = [() => lab.tearDown()];
  let daemon: Daemon | null = null;
  let rsyslog: ReturnType<typeof spawn> | null = null;
  try {
    lab.setUp(1);
    const link = lab.links[0]!;
    const inServer = (...args: string[]) => sh('ip', ['netns', 'exec', lab.serverNs, ...args]);
    const prefix = `KBF${process.pid}`;
    const kernLog = join(dir, 'kern.log');
    let options = '';
    if (mode === 'nflog') {
      inServer('iptables', '-A', 'INPUT', '-p', 'tcp', '-m', 'multiport', '--dports', '7000,8000,9000', '-j', 'NFLOG', '--nflog-group', '5', '--nflog-prefix', 'knock:');
      options = '\tFirewallLog = nflog:5\n\tNflogPrefix = knock:\n';
    } else if (mode === 'nflog-qt1') {
      inServer('nft', 'add table inet knock; add chain inet knock input { type filter hook input priority filter; } ; add rule inet knock input tcp dport { 7000, 8000, 9000 } log prefix "knock:" group 5 queue-threshold 1');
      options = '\tFirewallLog = nflog:5\n\tNflogPrefix = knock:\n';
    } else if (mode === 'pcap') {
      options = `\tMode = pcap\n\tInterface = ${link.server}\n`;
    } else {
      inServer('iptables', '-A', 'INPUT', '-p', 'tcp', '-m', 'multiport', '--dports', '7000,8000,9000', '-j', 'LOG', '--log-prefix', `${prefix} `);
      cleanups.push(holdLogAllNetns());
      const input = otherKmsgReader() ? 'module(load="imkmsg")' : 'module(load="imklog" permitnonkernelfacility="off")';
      mkdirSync(join(dir, 'rsyslog'));
      const conf = join(dir, 'rsyslog', 'rsyslog.conf');
      writeFileSync(conf, [`global(workDirectory="${join(dir, 'rsyslog')}")`, input, `kern.* action(type="omfile" file="${kernLog}")`, ''].join('\n'));
      rsyslog = spawn('rsyslogd', ['-n', '-f', conf, '-i', join(dir, 'rsyslog', 'pid')], { stdio: 'ignore' });
      const started = rsyslog;
      cleanups.push(() => void started.kill('SIGTERM'));
      for (let attempt = 0; !(existsSync(kernLog) && readFileSync(kernLog, 'utf8').includes(prefix)); attempt++) {
        if (attempt === 60) throw new Error('rsyslog wrote no line of the LOG rule');
        lab.knock(link.serverIp, '9000');
        await sleep(500);
      }
      options = `\tFirewallLog = ${kernLog}\n\tLogFormat = bench\n<logformat bench>\n\trequired = {{kernel}}${prefix} {{netfilter}}\n</logformat>\n`;
    }
    const startedFile = join(dir, 'started');
    const conf = join(dir, 'knocktail.conf');
    const log = join(dir, 'knocktail.log');
    writeFileSync(conf, `[options]\n${options}\tStateDir = ${join(dir, 'state')}\n\tLogFile = ${log}\n[door]\n\tsequence = 7000,8000,9000\n\tseq_timeout = 5\n\tstart_command = date "+%s%N %IP%" >> ${startedFile}\n`);
    daemon = lab.spawnInServer(process.execPath, [cliPath, '-c', conf]);
    for (let attempt = 0; !(existsSync(log) && readFileSync(log, 'utf8').includes('listening on')); attempt++) {
      if (attempt === 200 || !daemon.running) throw new Error(`knocktail did not start: ${daemon.output}`);
      await sleep(50);
    }
    const reader = mode === 'file' ? null : childrenOf(daemon.pid).find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('--knocktail-capture')) ?? null;
    const cpu = (): number => cpuMs(daemon!.pid) + (reader === null ? 0 : cpuMs(reader));
    const seconds = (WARMUP_MS + SEQUENCES * EVERY_MS + 2000) / 1000;
    const flood = spawn('ip', ['netns', 'exec', lab.clientNs, 'python3', FLOOD, link.serverIp, '7000', String(rate), String(sources), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let floodOutput = '';
    flood.stdout!.setEncoding('utf8').on('data', (text: string) => (floodOutput += text));
    const floodDone = new Promise<void>((resolve) => flood.once('exit', () => resolve()));
    const cpuBefore = cpu();
    const rsyslogBefore = rsyslog === null ? 0 : cpuMs(rsyslog.pid!);
    const t0 = performance.now();
    await sleep(WARMUP_MS);
    const knockedAt: number[] = [];
    for (let i = 0; i < SEQUENCES; i++) {
      const due = WARMUP_MS + i * EVERY_MS;
      await sleep(Math.max(0, due - (performance.now() - t0)));
      lab.knock(link.serverIp, '7000', '8000', '9000');
      knockedAt.push(performance.timeOrigin + performance.now());
    }
    await floodDone;
    const elapsed = performance.now() - t0;
    const daemonCpuPercent = ((cpu() - cpuBefore) / elapsed) * 100;
    const rsyslogCpuPercent = rsyslog === null ? null : ((cpuMs(rsyslog.pid!) - rsyslogBefore) / elapsed) * 100;
    // Late opens still count (the latency shows them); a sequence not open 10 s after the flood is lost.
    const startedLines = (): string[] => (existsSync(startedFile) ? readFileSync(startedFile, 'utf8').split('\n').filter(Boolean) : []);
    for (let waited = 0; startedLines().length < SEQUENCES && waited < 10_000; waited += 100) await sleep(100);
    const opens = startedLines().map((line) => Number(BigInt(line.split(' ')[0]!) / 1000n) / 1000);
    // Each open belongs to the latest knock before it (the sequences are 500 ms apart).
    const latencies = opens.map((at) => at - Math.max(...knockedAt.filter((knocked) => knocked <= at + 5)));
    const status = await requestStatus(join(dir, 'state'));
    const losses = status.inputs.flatMap((input) => ((input.lost as Array<{ count: number; unit: string }> | undefined) ?? []).map((loss) => `${loss.count} ${loss.unit}`));
    const discarded = status.inputs.map((input) => input.discarded).find((value) => typeof value === 'number' && value > 0);
    if (discarded !== undefined) losses.push(`${discarded} packets discarded by the capture process`);
    const dropped = status.inputs.flatMap((input) => (input.interfaces as Array<{ dropped: number }> | undefined) ?? []).reduce((sum, state) => sum + state.dropped, 0);
    if (dropped > 0) losses.push(`${dropped} packets dropped by the kernel (pcap)`);
    if (mode === 'file') {
      const logged = Number(/^\s*(\d+)/m.exec(inServer('iptables', '-L', 'INPUT', '-v', '-n', '-x').split('\n').slice(2).join('\n'))?.[1] ?? 0);
      const lines = readFileSync(kernLog, 'utf8').split('\n').filter((line) => line.includes(prefix)).length;
      losses.push(`${Math.max(0, logged - lines)} of ${logged} LOG lines never reached kern.log`);
    }
    const flooded = JSON.parse(floodOutput || '{"sent":0,"rate":0}') as { sent: number; rate: number };
    return {
      mode,
      opened: opens.length,
      sequences: SEQUENCES,
      p50Ms: median(latencies),
      p99Ms: percentile(latencies, 99),
      maxMs: Math.max(...latencies),
      floodSent: flooded.sent,
      floodRate: flooded.rate,
      daemonCpuPercent,
      rsyslogCpuPercent,
      daemonRssMb: procStatusKb(daemon.pid, 'VmHWM') / 1024,
      readerRssMb: reader === null ? null : procStatusKb(reader, 'VmHWM') / 1024,
      lost: losses.length === 0 ? 'nothing' : losses.join('; '),
      loadAverage: loadavg()[0]!,
    };
  } finally {
    await daemon?.stop(10_000);
    for (const cleanup of cleanups.reverse()) {
      try {
        cleanup();
      } catch (error) {
        process.stderr.write(`cleanup: ${(error as Error).message}\n`);
      }
    }
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { modes: { type: 'string' }, rate: { type: 'string', default: '100000' }, sources: { type: 'string', default: '1048576' }, json: { type: 'boolean', default: false } } });
  if (process.getuid?.() !== 0) {
    process.stderr.write('netns-flood needs root (network namespaces, firewall rules)\n');
    return 2;
  }
  const modes = (values.modes?.split(',') ?? MODES) as Mode[];
  const rate = Number(values.rate);
  const sources = Number(values.sources);
  const results: ModeResult[] = [];
  for (const mode of modes) {
    process.stderr.write(`${mode}…\n`);
    results.push(await withScratch((dir) => runMode(mode, rate, sources, dir)));
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return 0;
  }
  const ms = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(n < 10 ? 1 : 0)} ms` : '-');
  process.stdout.write(`| mode | opened | p50 | p99 | max | flood sent | CPU knocktail (rsyslogd) | peak RSS (reader) | lost | load |\n|---|---|---|---|---|---|---|---|---|---|\n`);
  for (const r of results) {
    process.stdout.write(
      `| ${r.mode} | ${r.opened}/${r.sequences} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${ms(r.maxMs)} | ${r.floodRate.toLocaleString('en-US')} pps from ${sources.toLocaleString('en-US')} sources | ` +
        `${r.daemonCpuPercent.toFixed(0)} %${r.rsyslogCpuPercent === null ? '' : ` (${r.rsyslogCpuPercent.toFixed(0)} %)`} | ${r.daemonRssMb.toFixed(0)} MB${r.readerRssMb === null ? '' : ` (${r.readerRssMb.toFixed(0)} MB)`} | ${r.lost} | ${r.loadAverage.toFixed(1)} |\n`,
    );
  }
  return 0;
}

process.exitCode = await main().catch((error: Error) => {
  process.stderr.write(`netns-flood failed: ${error.stack ?? error.message}\n`);
  return 1;
});
