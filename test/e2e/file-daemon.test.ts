/**
 * File mode end to end with real parts only: in two network namespaces made here, the real `knock` client knocks,
 * an iptables LOG rule in the server namespace logs the packets, a real rsyslogd started by this test (private
 * config, pid file and work directory; imklog, as Debian ships it) writes them to a kern.log, and the daemon
 * (`knocktail -c CONF`) follows that file and runs each door's start command. logrotate rotates the file in the
 * middle, once by rename + create + HUP while knocks are arriving and once by copytruncate: no knock is lost.
 * The namespaces, rsyslog and the kernel log setting come from firewall-lab.ts, and are undone afterwards.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sleep, until } from '../inputs/pcap-lab.js';
import { FirewallLab, liveSkip, untilLogged } from './firewall-lab.js';

const skip = liveSkip(['iptables', 'rsyslogd', 'logrotate'], true);

const lab = new FirewallLab('ktf', 231);
after(() => lab.tearDown());
/** Unique per run: lines other tests' namespaces log (the log is the whole kernel's) never match this daemon's format. */
const PREFIX = lab.prefix;
/** Logged by the rule but in no door: shows that rsyslog writes the file before the daemon starts. */
const PROBE_PORT = 7999;

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
    const dir = lab.dir;
    mkdirSync(join(dir, 'opened'));
    mkdirSync(join(dir, 'log'));
    const kernLog = join(dir, 'log', 'kern.log');
    const { serverIp: SERVER, clientIp: CLIENT, server: SERVER_IF } = lab.setUp({ kernelLog: true });
    // The README's rule: log TCP SYNs to the knock ports with a prefix, then drop them. Deleting the namespace removes it.
    const rule = ['-i', SERVER_IF, '-p', 'tcp', '--syn', '--dport', '7000:7999'];
    lab.inServer('iptables', '-A', 'INPUT', ...rule, '-j', 'LOG', '--log-prefix', `${PREFIX} `);
    lab.inServer('iptables', '-A', 'INPUT', ...rule, '-j', 'DROP');
    const knock = (...ports: number[]) => lab.knock(SERVER, ...ports.map(String));

    const rsyslog = lab.startRsyslog(kernLog);
    const logText = () => (existsSync(kernLog) ? readFileSync(kernLog, 'utf8') : '');
    await untilLogged(kernLog, `${PREFIX} IN=`, () => knock(PROBE_PORT), () => rsyslog.process.output);

    const conf = daemonConfig(dir, kernLog, ROUNDS);
    const daemon = await lab.daemon(conf);
    const context = () => `daemon output:\n${daemon.output}\nopened: ${readdirSync(join(dir, 'opened')).join(' ')}\nkern.log tail:\n${logText().split('\n').slice(-5).join('\n')}`;
    const opened = (round: number) => existsSync(join(dir, 'opened', `round${round}-${CLIENT}`));
    const waitOpened = (rounds: number[]) => until(() => rounds.every(opened), () => `rounds ${rounds.join(', ')} to open\n${context()}`, 30_000);

    // Before any rotation.
    for (const round of [1, 2, 3]) knock(...roundPorts(round));
    await waitOpened([1, 2, 3]);

    // rename + create + HUP while knocks arrive: lines written before rsyslog reopens land in the renamed file.
    const rotateConf = join(dir, 'logrotate-create.conf');
    writeFileSync(rotateConf, `${kernLog} {\n  rotate 4\n  nocompress\n  create 0640 root root\n  postrotate\n    kill -HUP $(cat ${rsyslog.pidFile})\n  endscript\n}\n`);
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

    assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, context());
    assert.deepEqual(readdirSync(join(dir, 'opened')).sort(), Array.from({ length: ROUNDS }, (_, i) => `round${i + 1}-${CLIENT}`).sort());
    // The follower noticed both rotations (its warnings go to the daemon's log). Caught between logrotate's rename
    // and its create, the path is missing for a moment; otherwise a new file is there.
    const said = daemon.output + (existsSync(join(dir, 'knocktail.log')) ? readFileSync(join(dir, 'knocktail.log'), 'utf8') : '');
    assert.match(said, /kern\.log (was rotated|does not exist; waiting for it to appear)/, context());
    assert.match(said, /kern\.log was truncated or rewritten in place/, context());
  });
});
