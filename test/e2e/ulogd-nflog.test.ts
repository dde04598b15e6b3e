/**
 * NFLOG end to end: iptables `-j NFLOG` rules in a server namespace made here, a private ulogd2 in that namespace
 * writing its LOGEMU file (NFLOG → BASE → IFINDEX → IP2STR → PRINTPKT → LOGEMU, sync=1, as README.md says), the
 * real `knock` client, and the daemon following the file with the shipped `ulogd` format: the door opens. NFLOG
 * needs no kernel log setting, and ulogd hears only its own namespace's packets.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { waitForLine } from '../inputs/pcap-lab.js';
import { FirewallLab, liveSkip, untilLogged } from './firewall-lab.js';

const lab = new FirewallLab('kul', 240);
after(() => lab.tearDown());
const GROUP = 2;

describe('ulogd2 end to end: knock → iptables NFLOG → ulogd2 LOGEMU file → knocktail → start command', { skip: liveSkip(['iptables', 'ulogd'], false) }, () => {
  it('opens the door for a knock of TCP and UDP steps', { timeout: 120_000 }, async () => {
    const link = lab.setUp({ kernelLog: false });
    for (const proto of ['tcp', 'udp']) {
      const rule = ['-i', link.server, '-p', proto, '-m', 'multiport', '--dports', '7000,8000,9000,7999'];
      lab.inServer('iptables', '-A', 'INPUT', ...rule, '-j', 'NFLOG', '--nflog-group', String(GROUP), '--nflog-prefix', `${lab.prefix} `);
      lab.inServer('iptables', '-A', 'INPUT', ...rule, '-j', 'DROP');
    }
    const logemu = join(lab.dir, 'syslogemu.log');
    const ulogd = lab.startUlogd(GROUP, logemu);
    await untilLogged(logemu, `${lab.prefix}  IN=`, () => lab.knock(link.serverIp, '7999'), () => ulogd.output);
    const conf = lab.writeConfig({ firewallLog: logemu, logFormat: 'ulogd', doors: [{ name: 'door', sequence: '7000,8000:udp,9000', tcpflags: 'syn' }] });
    const daemon = await lab.daemon(conf);
    lab.knock(link.serverIp, '7000', '8000:udp', '9000');
    await waitForLine(lab.commands, `START door ${link.clientIp}`);
    assert.deepEqual(await lab.stopped(daemon), [`START door ${link.clientIp}`]);
  });
});
