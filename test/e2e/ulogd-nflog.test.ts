/**
 * NFLOG end to end: iptables `-j NFLOG` rules in a server namespace made here, a private ulogd2 in that namespace
 * writing its LOGEMU file (NFLOG → BASE → IFINDEX → IP2STR → PRINTPKT → LOGEMU, sync=1, as README.md says), the
 * real `knock` client, and the daemon following the file with the shipped `ulogd` format: the door opens. NFLOG
 * needs no kernel log setting, and ulogd hears only its own namespace's packets.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { needs } from '../helpers.js';
import { fileLines, waitForLine } from '../inputs/pcap-lab.js';
import { FirewallLab, untilLogged } from './firewall-lab.js';

const skip = needs({ root: true, tools: ['ip', 'iptables', 'ulogd', 'knock'] });
const lab = new FirewallLab('kul', 240);
after(() => lab.tearDown());
const GROUP = 2;

describe('ulogd2 end to end: knock → iptables NFLOG → ulogd2 LOGEMU file → knocktail → start command', { skip }, () => {
  it('opens the door for a knock of TCP and UDP steps', { timeout: 120_000 }, async () => {
    const link = lab.setUp({ kernelLog: false });
    const prefix = lab.prefix;
    for (const proto of ['tcp', 'udp']) {
      const rule = ['-i', link.server, '-p', proto, '-m', 'multiport', '--dports', '7000,8000,9000,7999'];
      lab.inServer('iptables', '-A', 'INPUT', ...rule, '-j', 'NFLOG', '--nflog-group', String(GROUP), '--nflog-prefix', `${prefix} `);
      lab.inServer('iptables', '-A', 'INPUT', ...rule, '-j', 'DROP');
    }
    const logemu = join(lab.dir, 'syslogemu.log');
    const ulogd = lab.startUlogd(GROUP, logemu);
    await untilLogged(logemu, `${prefix}  IN=`, () => lab.knock(link.serverIp, '7999'), () => ulogd.output);

    const commands = join(lab.dir, 'commands');
    const conf = join(lab.dir, 'knocktail.conf');
    writeFileSync(conf, [
      '[options]',
      `  FirewallLog = ${logemu}`,
      '  LogFormat = ulogd',
      `  StateDir = ${join(lab.dir, 'state')}`,
      `  LogFile = ${join(lab.dir, 'knocktail.log')}`,
      '[door]',
      '  sequence = 7000,8000:udp,9000',
      '  tcpflags = syn',
      `  start_command = echo "START door %IP%" >> ${commands}`,
      '',
    ].join('\n'));
    const daemon = await lab.daemon(conf);
    lab.knock(link.serverIp, '7000', '8000:udp', '9000');
    await waitForLine(commands, `START door ${link.clientIp}`);
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, daemon.output);
    assert.deepEqual(fileLines(commands), [`START door ${link.clientIp}`]);
  });
});
