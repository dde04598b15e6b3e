/**
 * The kernel journal end to end: an iptables LOG rule in a server namespace made here, a private systemd-journald
 * (its own mount namespace: tmpfs over /run and /var/log/journal, the kernel's messages from /dev/kmsg), the real
 * `knock` client, and the daemon with `FirewallLog = journal` run in journald's mount namespace, so that its
 * `journalctl -k -f -o json` follows that journal's live entries: the door opens.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { requestStatus } from '../../src/daemon/control.js';
import { needs } from '../helpers.js';
import { fileLines, waitForLine } from '../inputs/pcap-lab.js';
import { FirewallLab, JOURNALD, LOG_ALL_NETNS, untilLogged } from './firewall-lab.js';

const skip = needs({ root: true, tools: ['ip', 'iptables', 'journalctl', 'unshare', 'nsenter', 'knock'] })
  || (JOURNALD === null ? 'needs systemd-journald (apt-get install systemd; installed by .ci/run)' : false)
  || (existsSync(LOG_ALL_NETNS) ? false : 'needs net.netfilter.nf_log_all_netns (a kernel with nf_log_syslog)');
const lab = new FirewallLab('kjd', 241);
after(() => lab.tearDown());

describe('kernel journal end to end: knock → iptables LOG → journald → journalctl → knocktail (FirewallLog = journal) → start command', { skip }, () => {
  it('follows the live journal and opens the door', { timeout: 120_000 }, async () => {
    const link = lab.setUp({ kernelLog: true });
    const rule = ['-i', link.server, '-p', 'tcp', '--syn', '-m', 'multiport', '--dports', '7000,8000,9000,7999'];
    lab.inServer('iptables', '-A', 'INPUT', ...rule, '-j', 'LOG', '--log-prefix', `${lab.prefix} `);
    lab.inServer('iptables', '-A', 'INPUT', ...rule, '-j', 'DROP');
    const journald = await lab.startJournald();

    const commands = join(lab.dir, 'commands');
    const conf = join(lab.dir, 'knocktail.conf');
    writeFileSync(conf, [
      '[options]',
      '  FirewallLog = journal',
      '  LogFormat = knock',
      `  StateDir = ${join(lab.dir, 'state')}`,
      `  LogFile = ${join(lab.dir, 'knocktail.log')}`,
      // The journal input renders entries as `TIME journal kernel: MESSAGE`: the recipe format takes only our prefix.
      '<logformat knock>',
      `  required = {{kernel}}${lab.prefix} {{netfilter}}`,
      '</logformat>',
      '[probe]',
      '  sequence = 7999',
      `  start_command = echo "PROBE %IP%" >> ${commands}`,
      '[door]',
      '  sequence = 7000,8000,9000',
      '  tcpflags = syn',
      `  start_command = echo "START door %IP%" >> ${commands}`,
      '',
    ].join('\n'));
    const daemon = await lab.daemon(conf, journald.via);
    // journalctl starts at the end of the journal: once a probe knock opened its door, it follows.
    await untilLogged(commands, `PROBE ${link.clientIp}`, () => lab.knock(link.serverIp, '7999'), () => daemon.output);
    lab.knock(link.serverIp, '7000', '8000', '9000');
    await waitForLine(commands, `START door ${link.clientIp}`);
    const status = await requestStatus(join(lab.dir, 'state'));
    assert.deepEqual(status.inputs.map((input) => input.kind), ['journal']);
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, daemon.output);
    assert.deepEqual(fileLines(commands).filter((line) => line.startsWith('START')), [`START door ${link.clientIp}`]);
  });
});
