/**
 * `FirewallLog = kmsg` end to end: an iptables LOG rule in a server namespace made here logs the knock ports
 * (net.netfilter.nf_log_all_netns held at 1, see kernel-log.ts), the real daemon reads the kernel's records from
 * /dev/kmsg itself, with no syslog daemon, through a format with this run's own prefix, and the stock `knock`
 * client opens the door over IPv4 and IPv6. The records lost when the ring is overwritten are covered by
 * test/inputs/kmsg.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DaemonStatus } from '../../src/daemon/control.js';
import { cliPath, needs, runCli, sh, tempDir } from '../helpers.js';
import { type Daemon, fileLines, Lab, type Link, until } from '../inputs/pcap-lab.js';
import { holdLogAllNetns, LOG_ALL_NETNS } from './firewall-lab.js';

const lab = new Lab('kkm', 240);
const skip = needs({ root: true, tools: ['ip', 'iptables', 'ip6tables', 'knock'] }) || (existsSync(LOG_ALL_NETNS) ? false : 'needs net.netfilter.nf_log_all_netns (a kernel with nf_log_syslog)');
/** Unique per run: the kernel log is the whole machine's. */
const PREFIX = `KKM${process.pid % 100_000}`;

describe('FirewallLog = kmsg: the daemon reads the kernel log from /dev/kmsg', { skip }, () => {
  let link: Link;
  let daemon: Daemon | null = null;
  let release: (() => void) | null = null;
  const dir = tempDir('knocktail-kmsg-');
  const commands = join(dir, 'commands.txt');
  const conf = join(dir, 'knocktail.conf');
  const log = join(dir, 'knocktail.log');

  before(() => {
    lab.setUp(1);
    link = lab.links[0]!;
    for (const tool of ['iptables', 'ip6tables']) {
      sh('ip', ['netns', 'exec', lab.serverNs, tool, '-A', 'INPUT', '-p', 'tcp', '-m', 'multiport', '--dports', '7000,8000,9000', '-j', 'LOG', '--log-prefix', `${PREFIX} `]);
    }
    release = holdLogAllNetns();
  });
  after(async () => {
    await daemon?.stop(5000);
    lab.tearDown();
    release?.();
  });

  test('the knock client opens over IPv4 and IPv6, and status shows the input', { timeout: 60_000 }, async () => {
    writeFileSync(
      conf,
      `[options]\n\tFirewallLog = kmsg\n\tLogFormat = run\n\tStateDir = ${join(dir, 'state')}\n\tLogFile = ${log}\n` +
        `<logformat run>\n\trequired = {{kernel}}${PREFIX} {{netfilter}}\n</logformat>\n` +
        `[door]\n\tsequence = 7000,8000,9000\n\tseq_timeout = 10\n\tstart_command = echo "START %IP%" >> ${commands}\n`,
    );
    daemon = lab.spawnInServer(process.execPath, [cliPath, '-c', conf]);
    const started = daemon;
    await until(() => existsSync(log) && readFileSync(log, 'utf8').includes('listening on kmsg'), () => `"listening on kmsg" in ${log}: ${started.output}`, 20_000, () => !started.running);
    lab.knock(link.serverIp, '7000', '8000', '9000');
    lab.knock('-6', link.serverIp6, '7000', '8000', '9000');
    await until(() => fileLines(commands).length === 2, () => `two opens: ${fileLines(commands).join(' | ')}\n${started.output}`);
    assert.deepEqual(fileLines(commands).sort(), [`START ${link.clientIp}`, `START ${link.clientIp6}`].sort());
    const result = await runCli(['status', '-c', conf, '--json']);
    assert.equal(result.code, 0, result.stderr);
    const input = (JSON.parse(result.stdout) as DaemonStatus).inputs[0]!;
    assert.equal(input.id, 'kmsg');
    assert.ok((input.records as number) >= 6, `${input.records} kernel records read`);
    assert.ok(Array.isArray(input.lost));
  });
});
