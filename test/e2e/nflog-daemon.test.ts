/**
 * `FirewallLog = nflog:5` end to end: in network namespaces made here, iptables/ip6tables NFLOG rules log the
 * knock ports to group 5 in the server namespace, the real daemon reads the group there, and the stock `knock`
 * client knocks. Only messages with the rule prefix `NflogPrefix` count. Under a flood of spoofed SYNs to the
 * first knock port (test/e2e/syn-flood.py) every real sequence still opens; and when the daemon's reader is
 * stopped (SIGSTOP) while the flood fills its socket, the kernel's drops show in `status` as lost, with the
 * cause and the remedy, and in a warning in the log, and knocks open again once it runs.
 *
 * Functional only: the figures (rates, latency, CPU) are taken by the benchmark (docs/performance.md).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { StatusJson } from '../../src/daemon/status-report.js';
import { cliPath, needs, repoRoot, runCli, sh, tempDir } from '../helpers.js';
import { type Daemon, fileLines, Lab, type Link, until } from '../inputs/pcap-lab.js';

const lab = new Lab('knl', 238);
const skip = needs({ root: true, tools: ['ip', 'iptables', 'ip6tables', 'knock', 'python3'] });
const FLOOD = join(repoRoot, 'test', 'e2e', 'syn-flood.py');
const GROUP = 5;

interface Run {
  dir: string;
  conf: string;
  commands: string;
  log: string;
  daemon: Daemon;
}

async function startDaemon(): Promise<Run> {
  const dir = tempDir('knocktail-nflog-');
  const commands = join(dir, 'commands.txt');
  const log = join(dir, 'knocktail.log');
  const conf = join(dir, 'knocktail.conf');
  writeFileSync(
    conf,
    `[options]\n\tFirewallLog = nflog:${GROUP}\n\tNflogPrefix = knock:\n\tStateDir = ${join(dir, 'state')}\n\tLogFile = ${log}\n` +
      `[door]\n\tsequence = 7000,8000,9000\n\tseq_timeout = 10\n\tstart_command = echo "START door %IP%" >> ${commands}\n` +
      `[other]\n\tsequence = 7001,7002,7003\n\tstart_command = echo "START other %IP%" >> ${commands}\n`,
  );
  // Not verbose: under the flood every spoofed first knock would be a line of output.
  const daemon = lab.spawnInServer(process.execPath, [cliPath, '-c', conf]);
  const run = { dir, conf, commands, log, daemon };
  await until(() => fileLines(log).some((line) => line.includes('listening on')), () => `"listening on" in ${log}:\n${daemon.output}`, 20_000, () => !daemon.running);
  return run;
}

async function statusOf(run: Run): Promise<StatusJson> {
  const result = await runCli(['status', '-c', run.conf, '--json']);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as StatusJson;
}

interface NflogStatus {
  received: number;
  queuedBytes: number | null;
  flushTimeoutMs: number | null;
  hits: number;
  readerPid: number | null;
  lost: Array<{ count: number; unit: string; cause: string; remedy: string }>;
}

function nflogStatus(status: StatusJson): NflogStatus {
  const input = status.inputs.find((candidate) => candidate.id === `nflog:${GROUP}`);
  assert.ok(input !== undefined, `no nflog input in ${JSON.stringify(status.inputs)}`);
  return input as unknown as NflogStatus;
}

/** The flood generator in the client namespace; `done` gives its report. */
function flood(link: Link, rate: number, sources: number, seconds: number): { child: ChildProcess; done: Promise<{ sent: number }> } {
  const child = spawn('ip', ['netns', 'exec', lab.clientNs, 'python3', FLOOD, link.serverIp, '7000', String(rate), String(sources), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (output += text));
  const done = once(child, 'exit').then(() => JSON.parse(output) as { sent: number });
  return { child, done };
}

/** Asks for status until `ok` holds for what `pick` takes from it; fails naming `what` after `limitMs`. */
async function statusUntil<T>(run: Run, pick: (status: StatusJson) => T, ok: (value: T) => boolean, what: string, limitMs = 20_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = pick(await statusOf(run));
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`nothing after ${limitMs} ms: waited for ${what}, last ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const starts = (run: Run, door: string): string[] => fileLines(run.commands).filter((line) => line.startsWith(`START ${door} `));

describe('FirewallLog = nflog:GROUP: the daemon reads the firewall log over netlink', { skip }, () => {
  let link: Link;
  let run: Run;

  before(async () => {
    lab.setUp(1);
    link = lab.links[0]!;
    for (const tool of ['iptables', 'ip6tables']) {
      const exec = (...rule: string[]) => sh('ip', ['netns', 'exec', lab.serverNs, tool, ...rule]);
      exec('-A', 'INPUT', '-p', 'tcp', '-m', 'multiport', '--dports', '7000,8000,9000', '-j', 'NFLOG', '--nflog-group', String(GROUP), '--nflog-prefix', 'knock:');
      // Another rule's messages in the same group: they must not count.
      exec('-A', 'INPUT', '-p', 'tcp', '-m', 'multiport', '--dports', '7001,7002,7003', '-j', 'NFLOG', '--nflog-group', String(GROUP), '--nflog-prefix', 'other');
    }
    run = await startDaemon();
  });
  after(async () => {
    await run?.daemon.stop(5000);
    lab.tearDown();
  });

  test('the knock client opens over IPv4 and IPv6; messages of another rule prefix never count', { timeout: 60_000 }, async () => {
    lab.knock(link.serverIp, '7000', '8000', '9000');
    lab.knock('-6', link.serverIp6, '7000', '8000', '9000');
    lab.knock(link.serverIp, '7001', '7002', '7003');
    await until(() => starts(run, 'door').length === 2, () => `two opens in ${run.commands}: ${fileLines(run.commands).join(' | ')}\n${run.daemon.output}`);
    // The `other` sequence was logged (with the prefix `other`) before this last knock: had it counted, it would have opened by now.
    lab.knock(link.serverIp, '7000', '8000', '9000');
    await until(() => starts(run, 'door').length === 3, () => `a third open: ${fileLines(run.commands).join(' | ')}`);
    assert.deepEqual(starts(run, 'door'), [`START door ${link.clientIp}`, `START door ${link.clientIp6}`, `START door ${link.clientIp}`]);
    assert.deepEqual(starts(run, 'other'), []);
    // The reader reports its counters every second.
    const input = await statusUntil(run, nflogStatus, (value) => value.received >= 12, 'the `other` messages among those received');
    assert.equal(input.hits, 9, 'three sequences with the `knock:` prefix');
    // libpcap leaves the group's 1 s flush timer; knocktail sets 10 ms (iptables-nft rules batch messages).
    assert.equal(input.flushTimeoutMs, 10);
    assert.deepEqual(input.lost, []);
  });

  test('under a flood of spoofed SYNs to the first knock port, every real sequence opens', { timeout: 180_000 }, async (t) => {
    const before = starts(run, 'door').length;
    const hitsBefore = nflogStatus(await statusOf(run)).hits;
    const { child, done } = flood(link, 50_000, 200_000, 120);
    try {
      // The flood is there before the first knock.
      await statusUntil(run, (status) => nflogStatus(status).hits, (hits) => hits >= hitsBefore + 120_000, 'the flood reaching the daemon (beyond MaxSources)', 60_000);
      const sequences = 10;
      for (let i = 0; i < sequences; i++) lab.knock(link.serverIp, '7000', '8000', '9000');
      await until(() => starts(run, 'door').length === before + sequences, () => `${sequences} more opens, got ${starts(run, 'door').length - before}`, 60_000);
    } finally {
      child.kill('SIGTERM');
    }
    const { sent } = await done;
    const status = await statusOf(run);
    const input = nflogStatus(status);
    assert.ok(status.counters.sourcesDropped! > 0 || status.knocksInProgress.sources > 1000, 'the spoofed sources reached the matcher');
    t.diagnostic(`${sent} spoofed SYNs sent; ${input.received} messages received; lost: ${JSON.stringify(input.lost)}; sources evicted ${status.counters.sourcesDropped}`);
  });

  test('a reader that falls behind: every logged packet is received or counted as lost, warned about, and knocks open again', { timeout: 120_000 }, async () => {
    // After the flood of the previous test: the reader has taken everything (its counters come every second).
    const before = await statusUntil(run, nflogStatus, (input) => input.queuedBytes === 0 && input.received - input.hits === 3, 'the reader idle (its counters include the three messages of the `other` rule)');
    const lostBefore = before.lost.reduce((sum, loss) => sum + loss.count, 0);
    const pid = before.readerPid;
    assert.ok(pid !== null && pid > 0, 'the reader process');
    const opened = starts(run, 'door').length;
    process.kill(pid, 'SIGSTOP');
    let sent = 0;
    try {
      // Far more than the socket buffer holds (at most 2 x net.core.rmem_max).
      const maxBuffer = Number(readFileSync('/proc/sys/net/core/rmem_max', 'latin1'));
      ({ sent } = await flood(link, 0, 100_000, Math.max(1, (8 * maxBuffer) / 100 / 100_000)).done);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Until the socket is drained, the kernel drops whatever comes (a knock then would be lost, and counted).
    // Its drop counter tells at once, in netlink messages (batches of packets).
    const drained = await statusUntil(run, nflogStatus, (input) => input.lost.length > 0 && input.queuedBytes === 0, 'the drops in status, the socket drained');
    assert.match(drained.lost[0]!.cause, /socket buffer full/);
    assert.match(drained.lost[0]!.remedy, /rmem_max/);
    // The next messages (the knock's) show the gap in the sequence numbers: every logged packet counted exactly.
    lab.knock(link.serverIp, '7000', '8000', '9000');
    await until(() => starts(run, 'door').length === opened + 1, () => `the open after the overrun: ${run.daemon.output}`, 60_000);
    const after = await statusUntil(run, nflogStatus, (input) => input.received - before.received + (input.lost[0]?.count ?? 0) - lostBefore >= sent + 3, 'the flood and the knock received or counted');
    const lost = after.lost;
    assert.equal(lost.length, 1, JSON.stringify(lost));
    assert.equal(lost[0]!.unit, 'logged packets', 'counted exactly, from the gaps in the sequence numbers');
    assert.ok(lost[0]!.count - lostBefore > 0 && lost[0]!.count - lostBefore < sent, `${lost[0]!.count - lostBefore} lost of ${sent} sent`);
    assert.equal(after.received - before.received + lost[0]!.count - lostBefore, sent + 3, 'every spoofed SYN and knock was received or counted as lost');
    await until(() => readFileSync(run.log, 'utf8').includes(`warning: nflog:${GROUP} lost `), () => `the warning in ${run.log}`, 20_000);
    const warning = readFileSync(run.log, 'utf8').split('\n').find((line) => line.includes(`nflog:${GROUP} lost `))!;
    // Whichever the daemon saw first: the drops (netlink messages) or the gap (packets).
    assert.match(warning, /lost \d+ (logged packets|netlink messages [^:]*): the kernel found the socket buffer full[^;]*; fix: raise net\.core\.rmem_max/);
  });
});
