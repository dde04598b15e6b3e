/**
 * ufw end to end: ufw enabled with its own logging (`ufw logging on`: default deny, `[UFW BLOCK]` LOG lines) in a
 * server namespace made here, the real `knock` client, a private rsyslog writing the kernel's lines to a kern.log,
 * and the daemon following it with the shipped `ufw` format: the door opens. ufw acts only inside that namespace and
 * on copies of its configuration (firewall-lab.ts); the host's ufw files and firewall stay as they were.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sh } from '../helpers.js';
import { fileLines, waitForLine } from '../inputs/pcap-lab.js';
import { FirewallLab, liveSkip, untilLogged } from './firewall-lab.js';

const lab = new FirewallLab('kuf', 239);
after(() => lab.tearDown());

/** A digest of ufw's files on the host (names and contents), to show that the test changed none of them. */
function hostUfwFiles(): string {
  const hash = createHash('sha256');
  const walk = (path: string): void => {
    if (!existsSync(path)) return;
    if (statSync(path).isDirectory()) for (const name of readdirSync(path).sort()) walk(join(path, name));
    else hash.update(`${path}\n`).update(readFileSync(path));
  };
  for (const path of ['/etc/ufw', '/etc/default/ufw', '/lib/ufw']) walk(path);
  return hash.digest('hex');
}

/** Whether the host's own firewall (the first namespace) has ufw chains. */
const hostHasUfwChains = (): boolean => /ufw-/.test(sh('iptables', ['-S']));

describe("ufw end to end: knock → ufw's [UFW BLOCK] logging → rsyslog → kern.log → knocktail → start command", { skip: liveSkip(['iptables', 'ufw', 'unshare', 'rsyslogd'], true) }, () => {
  it('opens the door; the host keeps its ufw files and firewall', { timeout: 120_000 }, async () => {
    const hostFiles = hostUfwFiles();
    const hostChains = hostHasUfwChains();
    const link = lab.setUp({ kernelLog: true });
    const ufw = lab.ufw();
    assert.match(ufw('--force', 'enable'), /Firewall is active/);
    assert.match(ufw('logging', 'on'), /Logging enabled/);
    assert.match(ufw('status', 'verbose'), /Logging: on \(low\)[\s\S]*Default: deny \(incoming\)/);
    // ufw rate-limits its log rule (3/min, burst 10): rsyslog's readiness is probed on a port of a rule of our own,
    // put before ufw's chains, so that ufw logs only the knock.
    const probe = ['-i', link.server, '-p', 'tcp', '--dport', '7999'];
    lab.inServer('iptables', '-I', 'INPUT', '1', ...probe, '-j', 'LOG', '--log-prefix', `${lab.prefix} `);
    lab.inServer('iptables', '-I', 'INPUT', '2', ...probe, '-j', 'DROP');

    const kernLog = join(lab.dir, 'kern.log');
    const rsyslog = lab.startRsyslog(kernLog);
    await untilLogged(kernLog, `${lab.prefix} IN=`, () => lab.knock(link.serverIp, '7999'), () => rsyslog.process.output);

    const conf = lab.writeConfig({ firewallLog: kernLog, logFormat: 'ufw', doors: [{ name: 'door', sequence: '7000,8000,9000', tcpflags: 'syn' }] });
    const daemon = await lab.daemon(conf);
    lab.knock(link.serverIp, '7000', '8000', '9000');
    await waitForLine(lab.commands, `START door ${link.clientIp}`);
    assert.deepEqual(await lab.stopped(daemon), [`START door ${link.clientIp}`]);
    const blocked = fileLines(kernLog).filter((line) => line.includes(`[UFW BLOCK] IN=${link.server} `));
    assert.deepEqual(blocked.map((line) => /DPT=(\d+)/.exec(line)?.[1]), ['7000', '8000', '9000'], 'ufw logged the knocks, and only them');

    await lab.tearDown();
    assert.equal(hostUfwFiles(), hostFiles, "the host's ufw files are unchanged");
    assert.equal(hostHasUfwChains(), hostChains, "the host's firewall got no ufw chains");
  });
});
