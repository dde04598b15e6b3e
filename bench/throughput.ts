/**
 * Throughput of `knocktail replay`: 1,000,000 generated iptables LOG lines beside the plain read-and-split
 * baseline and fail2ban-regex (the rival), and 1,000,000 generated packets in a pcap file beside the raw
 * record walk of the same file.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KNOCK_PORTS, writeCorpus, writeCorpusPcap } from './generate.js';
import { cliPath, helperPath, median, repeat, repoRoot, timedRun, which } from './harness.js';

/**
 * Doors on the corpus's knock ports (7000-7003), so a quarter of the lines are parsed in full and reach the
 * matcher; the other lines carry ports no door uses. Replay is a dry run: commands are reported, not run.
 */
export function corpusConfig(): string {
  const [a, b, c, d] = KNOCK_PORTS;
  return `[options]
	LogFormat = iptables

[benchTCP]
	sequence      = ${a},${b},${c},${d}
	seq_timeout   = 5
	tcpflags      = syn
	start_command = /usr/sbin/iptables -I INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
	cmd_timeout   = 10
	stop_command  = /usr/sbin/iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT

[benchUDP]
	sequence      = ${d}:udp,${c}:udp,${b}:udp
	seq_timeout   = 5
	start_command = /usr/sbin/iptables -I INPUT -s %IP% -p tcp --dport 443 -j ACCEPT
`;
}

export interface ReplayResult {
  lines: number;
  bytes: number;
  knockLines: number;
  runs: number;
  /** Median wall time of `knocktail replay` (process start to exit). */
  wallMs: number;
  linesPerSecond: number;
  baselineSplit: { wallMs: number; linesPerSecond: number };
  baselineReadline: { wallMs: number; linesPerSecond: number };
  /** Share of the read-and-split limit that replay reaches. */
  ofBaseline: number;
  fail2ban: { lines: number; matched: number; wallMs: number; linesPerSecond: number; scaledWallMsFor: number; version: string } | { skipped: string };
  /** replay lines/s ÷ fail2ban-regex lines/s. */
  vsFail2ban: number | null;
}

/** "FILE: lines: read 1000000, …" from replay's closing summary; checks every line was read. */
function checkSummary(stdoutTail: string, lines: number): void {
  const match = /: lines: read (\d+),/.exec(stdoutTail);
  if (match === null || Number(match[1]) !== lines) throw new Error(`replay did not report ${lines} lines read: ${stdoutTail.slice(-500)}`);
}

export async function replayThroughput(dir: string, lines: number, runs: number, fail2banLines: number): Promise<ReplayResult> {
  const log = join(dir, 'corpus.log');
  const conf = join(dir, 'bench.conf');
  writeFileSync(conf, corpusConfig());
  const { bytes, knocks } = writeCorpus(log, lines);

  const replayRuns = await repeat(runs, 'knocktail replay', () => timedRun(process.execPath, [cliPath, 'replay', '-c', conf, log]));
  checkSummary(replayRuns[0]!.stdoutTail, lines);
  const wallMs = median(replayRuns.map((r) => r.wallMs));
  const baseline = async (mode: string) => {
    const timed = await repeat(runs, `baseline ${mode}`, () => timedRun(process.execPath, [helperPath, mode, log]));
    if (Number(timed[0]!.stdoutTail.trim()) !== lines) throw new Error(`baseline ${mode} counted ${timed[0]!.stdoutTail.trim()} lines, not ${lines}`);
    const ms = median(timed.map((r) => r.wallMs));
    return { wallMs: ms, linesPerSecond: (lines / ms) * 1000 };
  };
  const baselineSplit = await baseline('split');
  const baselineReadline = await baseline('readline');
  const linesPerSecond = (lines / wallMs) * 1000;
  const fail2ban = await fail2banThroughput(dir, Math.min(lines, fail2banLines), lines);
  return {
    lines,
    bytes,
    knockLines: knocks,
    runs,
    wallMs,
    linesPerSecond,
    baselineSplit,
    baselineReadline,
    ofBaseline: linesPerSecond / baselineSplit.linesPerSecond,
    fail2ban,
    vsFail2ban: 'skipped' in fail2ban ? null : linesPerSecond / fail2ban.linesPerSecond,
  };
}

/**
 * fail2ban-regex with bench/fail2ban-knock.conf (the filter users of fail2ban write for knocks: kernel prefix line, the knock
 * log prefix, <ADDR> and the DPT tag) on the first `lines` lines of the same corpus, timed once. A full run
 * gives it the whole file, so both sides pay their start-up once on the same input; --quick times a subset and
 * scales its rate (which overstates fail2ban's time by its start-up, about 0.2 s).
 */
async function fail2banThroughput(dir: string, lines: number, fullLines: number): Promise<ReplayResult['fail2ban']> {
  const command = which('fail2ban-regex');
  if (command === null) return { skipped: 'fail2ban-regex is not installed (apt-get install fail2ban)' };
  const subset = join(dir, 'fail2ban-subset.log');
  const { knocks } = writeCorpus(subset, lines);
  const filter = join(repoRoot, 'bench', 'fail2ban-knock.conf');
  const run = await timedRun(command, ['--print-no-missed', subset, filter]);
  if (run.code !== 0) throw new Error(`fail2ban-regex failed (exit ${run.code}): ${run.stderr.slice(-2000)}`);
  const summary = /Lines: (\d+) lines, (\d+) ignored, (\d+) matched/.exec(run.stdoutTail);
  if (summary === null || Number(summary[1]) !== lines) throw new Error(`fail2ban-regex did not report ${lines} lines: ${run.stdoutTail.slice(-1000)}`);
  const matched = Number(summary[3]);
  if (matched !== knocks) throw new Error(`fail2ban-regex matched ${matched} lines, the subset has ${knocks} knock lines: the filter is not equivalent`);
  const version = (await timedRun(command, ['--version'])).stdoutTail.trim();
  const linesPerSecond = (lines / run.wallMs) * 1000;
  return { lines, matched, wallMs: run.wallMs, linesPerSecond, scaledWallMsFor: (fullLines / linesPerSecond) * 1000, version };
}

export interface PcapResult {
  packets: number;
  bytes: number;
  runs: number;
  wallMs: number;
  packetsPerSecond: number;
  rawRead: { wallMs: number; packetsPerSecond: number };
  ofRawRead: number;
}

export async function pcapThroughput(dir: string, packets: number, runs: number): Promise<PcapResult> {
  const capture = join(dir, 'corpus.pcap');
  const conf = join(dir, 'bench.conf');
  writeFileSync(conf, corpusConfig());
  const bytes = writeCorpusPcap(capture, packets);
  const replayRuns = await repeat(runs, 'knocktail replay (pcap)', () => timedRun(process.execPath, [cliPath, 'replay', '-c', conf, capture]));
  const wallMs = median(replayRuns.map((r) => r.wallMs));
  const rawRuns = await repeat(runs, 'baseline pcap', () => timedRun(process.execPath, [helperPath, 'pcap', capture]));
  if (Number(rawRuns[0]!.stdoutTail.trim()) !== packets) throw new Error(`baseline pcap counted ${rawRuns[0]!.stdoutTail.trim()} packets, not ${packets}`);
  const rawMs = median(rawRuns.map((r) => r.wallMs));
  const packetsPerSecond = (packets / wallMs) * 1000;
  const rawPerSecond = (packets / rawMs) * 1000;
  return { packets, bytes, runs, wallMs, packetsPerSecond, rawRead: { wallMs: rawMs, packetsPerSecond: rawPerSecond }, ofRawRead: packetsPerSecond / rawPerSecond };
}
