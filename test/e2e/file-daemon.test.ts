/**
 * File mode end to end with real parts only: in two network namespaces made here, the real `knock` client knocks,
 * an iptables LOG rule in the server namespace logs the packets, a real rsyslogd started by this test (private
 * config, pid file and work directory; imklog, as Debian ships it) writes them to a kern.log, and the daemon
 * (`knocktail -c CONF`) follows that file and runs each door's start command. logrotate rotates the file in the
 * middle, once by rename + create + HUP while knocks are arriving and once by copytruncate: no knock is lost.
 *
 * Kernel LOG lines from a namespace other than the first reach the log only with net.netfilter.nf_log_all_netns=1:
 * it is set for the test and restored afterwards, like everything else made here.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cliPath, needs, sh, tempDir } from '../helpers.js';
import { holdLogAllNetns, LOG_ALL_NETNS, otherKmsgReader } from './kernel-log.js';

const skip = needs({ root: true, tools: ['ip', 'iptables', 'rsyslogd', 'logrotate', 'knock'] })
  || (existsSync(LOG_ALL_NETNS) ? false : 'needs net.netfilter.nf_log_all_netns (a kernel with nf_log_syslog)');

const id = String(process.pid % 100_000);
const SERVER_NS = `ktf${id}s`;
const CLIENT_NS = `ktf${id}c`;
const SERVER_IF = `ktf${id}a`;
const CLIENT_IF = `ktf${id}b`;
const SERVER = '10.231.0.1';
const CLIENT = '10.231.0.2';
/** Unique per run: lines other tests' namespaces log (the log is the whole kernel's) never match this daemon's format. */
const PREFIX = `KTF${id}`;
/** Logged by the rule but in no door: shows that rsyslog writes the file before the daemon starts. */
const PROBE_PORT = 7999;

/** Undo steps, newest first; run after the tests whatever happened. */
const cleanups: Array<() => void | Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch (error) {
      process.stderr.write(`cleanup: ${(error as Error).message}\n`);
    }
  }
});

async function waitFor(what: string, condition: () => boolean, context: () => string, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}\n${context()}`);
    await sleep(100);
  }
}

/** A child process of this test, stopped by pid (SIGTERM, then SIGKILL) at cleanup. */
function started(command: string, args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  cleanups.push(async () => void (await stop(child)));
  return { child, output: () => output };
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const [code] = await exited;
  clearTimeout(killer);
  return code as number | null;
}

function knock(...ports: number[]): void {
  sh('ip', ['netns', 'exec', CLIENT_NS, 'knock', SERVER, ...ports.map(String)]);
}

function network(): void {
  sh('ip', ['netns', 'add', SERVER_NS]);
  cleanups.push(() => void sh('ip', ['netns', 'del', SERVER_NS]));
  sh('ip', ['netns', 'add', CLIENT_NS]);
  cleanups.push(() => void sh('ip', ['netns', 'del', CLIENT_NS]));
  sh('ip', ['link', 'add', SERVER_IF, 'netns', SERVER_NS, 'type', 'veth', 'peer', 'name', CLIENT_IF, 'netns', CLIENT_NS]);
  sh('ip', ['-n', SERVER_NS, 'addr', 'add', `${SERVER}/24`, 'dev', SERVER_IF]);
  sh('ip', ['-n', CLIENT_NS, 'addr', 'add', `${CLIENT}/24`, 'dev', CLIENT_IF]);
  for (const [ns, dev] of [[SERVER_NS, SERVER_IF], [CLIENT_NS, CLIENT_IF], [SERVER_NS, 'lo'], [CLIENT_NS, 'lo']] as const) sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  // The README's rule: log TCP SYNs to the knock ports with a prefix, then drop them. Deleting the namespace removes it.
  const rule = ['-i', SERVER_IF, '-p', 'tcp', '--syn', '--dport', '7000:7999'];
  sh('ip', ['netns', 'exec', SERVER_NS, 'iptables', '-A', 'INPUT', ...rule, '-j', 'LOG', '--log-prefix', `${PREFIX} `]);
  sh('ip', ['netns', 'exec', SERVER_NS, 'iptables', '-A', 'INPUT', ...rule, '-j', 'DROP']);
  cleanups.push(holdLogAllNetns());
}

/** Three-knock doors, one per round of knocking; each start command leaves a marker named after door and IP. */
function daemonConfig(dir: string, kernLog: string, rounds: number): string {
  const conf = join(dir, 'knocktail.conf');
  const doors = Array.from({ length: rounds }, (_, i) => {
    const base = 7100 + 10 * (i + 1);
    return [`[round${i + 1}]`, `  sequence = ${base + 1},${base + 2},${base + 3}`, '  seq_timeout = 20', '  tcpflags = syn',
      `  start_command = touch ${join(dir, 'opened')}/round${i + 1}-%IP%`].join('\n');
  });
  writeFileSync(conf, [
    '[options]',
    `  FirewallLog = ${kernLog}`,
    '  LogFormat = e2e',
    `  StateDir = ${join(dir, 'state')}`,
    `  LogFile = ${join(dir, 'knocktail.log')}`,
    // The --log-prefix recipe: only this rule's lines.
    '<logformat e2e>',
    `  required = {{kernel}}${PREFIX} {{netfilter}}`,
    '</logformat>',
    ...doors,
  ].join('\n'));
  return conf;
}

const ROUNDS = 9;
const roundPorts = (round: number) => [1, 2, 3].map((step) => 7100 + 10 * round + step);

describe('file mode end to end: knock → iptables LOG → rsyslog → kern.log → knocktail → start command', { skip }, () => {
  it('opens for every knock, before, during and after logrotate runs', { timeout: 180_000 }, async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'opened'));
    mkdirSync(join(dir, 'rsyslog'));
    mkdirSync(join(dir, 'log'));
    const kernLog = join(dir, 'log', 'kern.log');
    network();

    // rsyslog as Debian runs it (imklog, kern.* to a file in the RFC 3339 format), but private: no /dev/log, no
    // system pid file. imklog reads /proc/kmsg, which hands each message to one reader only: when the host's
    // syslog already reads it, imkmsg (its own /dev/kmsg cursor) takes its place.
    const input = otherKmsgReader() ? 'module(load="imkmsg")' : 'module(load="imklog" permitnonkernelfacility="off")';
    const rsyslogConf = join(dir, 'rsyslog', 'rsyslog.conf');
    const rsyslogPid = join(dir, 'rsyslog', 'rsyslogd.pid');
    writeFileSync(rsyslogConf, [`global(workDirectory="${join(dir, 'rsyslog')}")`, input, `kern.* action(type="omfile" file="${kernLog}")`, ''].join('\n'));
    const rsyslog = started('rsyslogd', ['-n', '-f', rsyslogConf, '-i', rsyslogPid]);
    const logText = () => (existsSync(kernLog) ? readFileSync(kernLog, 'utf8') : '');
    for (let attempt = 0; !logText().includes(`${PREFIX} IN=`); attempt++) {
      if (attempt === 60) throw new Error(`rsyslog never wrote a ${PREFIX} line to ${kernLog} (${input}):\n${rsyslog.output()}`);
      knock(PROBE_PORT);
      await sleep(500);
    }

    const conf = daemonConfig(dir, kernLog, ROUNDS);
    const daemon = started(process.execPath, [cliPath, '-c', conf, '-v']);
    const context = () => `daemon output:\n${daemon.output()}\nopened: ${readdirSync(join(dir, 'opened')).join(' ')}\nkern.log tail:\n${logText().split('\n').slice(-5).join('\n')}`;
    await waitFor('the daemon to listen', () => /listening on/.test(daemon.output()), context);
    const opened = (round: number) => existsSync(join(dir, 'opened', `round${round}-${CLIENT}`));
    const waitOpened = (rounds: number[]) => waitFor(`rounds ${rounds.join(', ')} to open`, () => rounds.every(opened), context);

    // Before any rotation.
    for (const round of [1, 2, 3]) knock(...roundPorts(round));
    await waitOpened([1, 2, 3]);

    // rename + create + HUP while knocks arrive: lines written before rsyslog reopens land in the renamed file.
    const rotateConf = join(dir, 'logrotate-create.conf');
    writeFileSync(rotateConf, `${kernLog} {\n  rotate 4\n  nocompress\n  create 0640 root root\n  postrotate\n    kill -HUP $(cat ${rsyslogPid})\n  endscript\n}\n`);
    const logrotate = spawn('logrotate', ['-f', '-s', join(dir, 'logrotate.state'), rotateConf], { stdio: ['ignore', 'ignore', 'pipe'] });
    const rotated = once(logrotate, 'exit'); // now: it may well exit while the knocks below are sent
    for (const round of [4, 5, 6]) {
      knock(...roundPorts(round));
      await sleep(30);
    }
    assert.equal((await rotated)[0], 0, 'logrotate (create)');
    assert.ok(existsSync(`${kernLog}.1`), 'the file was rotated');
    await waitOpened([4, 5, 6]);

    // copytruncate: logrotate copies the file, then truncates it in place (no knock during it: lines written
    // between the copy and the truncation are lost by logrotate itself, whoever reads the log).
    knock(...roundPorts(7));
    await waitOpened([7]);
    const truncateConf = join(dir, 'logrotate-copytruncate.conf');
    writeFileSync(truncateConf, `${kernLog} {\n  rotate 4\n  nocompress\n  copytruncate\n}\n`);
    const truncate = spawnSync('logrotate', ['-f', '-s', join(dir, 'logrotate.state'), truncateConf], { encoding: 'utf8' });
    assert.equal(truncate.status, 0, `logrotate (copytruncate): ${truncate.stderr}`);
    for (const round of [8, 9]) knock(...roundPorts(round));
    await waitOpened([8, 9]);

    assert.equal(await stop(daemon.child), 0, context());
    assert.deepEqual(readdirSync(join(dir, 'opened')).sort(), Array.from({ length: ROUNDS }, (_, i) => `round${i + 1}-${CLIENT}`).sort());
    // The follower noticed both rotations (its warnings go to the daemon's log). Caught between logrotate's rename
    // and its create, the path is missing for a moment; otherwise a new file is there.
    const said = daemon.output() + (existsSync(join(dir, 'knocktail.log')) ? readFileSync(join(dir, 'knocktail.log'), 'utf8') : '');
    assert.match(said, /kern\.log (was rotated|does not exist; waiting for it to appear)/, context());
    assert.match(said, /kern\.log was truncated or rewritten in place/, context());
  });
});
