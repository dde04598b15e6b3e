/**
 * The kernel journal end to end: an iptables LOG rule in a server namespace made here, a private systemd-journald
 * (its own mount namespace: tmpfs over /run and /var/log/journal, the kernel's messages from /dev/kmsg), the real
 * `knock` client, and the daemon with `FirewallLog = journal` run in journald's mount namespace, so that its
 * `journalctl -k -f -o json` follows that journal's live entries: the door opens.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { requestStatus } from '../../src/daemon/control.js';
import { waitForLine } from '../inputs/pcap-lab.js';
import { FirewallLab, JOURNALD, liveSkip, untilLogged } from './firewall-lab.js';

const skip = liveSkip(['iptables', 'journalctl', 'unshare', 'nsenter'], true)
  || (JOURNALD === null ? 'needs systemd-journald (apt-get install systemd; installed by .ci/run)' : false);
const lab = new FirewallLab('kjd', 241);
after(() => lab.tearDown());

describe('kernel journal end to end: knock → iptables LOG → journald → journalctl → knocktail (FirewallLog = journal) → start command', { skip }, () => {
  it('follows the live journal and opens the door', { timeout: 120_000 }, async () => {
    const link = lab.setUp({ kernelLog: true });
    const rule = ['-i', link.server, '-p', 'tcp', '--syn', '-m', 'multiport', '--dports', '7000,8000,9000,7999'];
    lab.inServer('iptables', '-A', 'INPUT', ...rule, '-j', 'LOG', '--log-prefix', `${lab.prefix} `);
    lab.inServer('iptables', '-A', 'INPUT', ...rule, '-j', 'DROP');
    const journald = await lab.startJournald();

    // The journal input renders entries as `TIME journal kernel: MESSAGE`: the recipe format takes only our prefix.
    const conf = lab.writeConfig({
      firewallLog: 'journal',
      logFormat: 'knock',
      prefixFormat: true,
      doors: [{ name: 'probe', sequence: '7999' }, { name: 'door', sequence: '7000,8000,9000', tcpflags: 'syn' }],
    });
    const daemon = await lab.daemon(conf, journald.via);
    // journalctl starts at the end of the journal: once a probe knock opened its door, it follows.
    await untilLogged(lab.commands, `START probe ${link.clientIp}`, () => lab.knock(link.serverIp, '7999'), () => daemon.output);
    lab.knock(link.serverIp, '7000', '8000', '9000');
    await waitForLine(lab.commands, `START door ${link.clientIp}`);
    const status = await requestStatus(join(lab.dir, 'state'));
    assert.deepEqual(status.inputs.map((input) => input.kind), ['journal']);
    assert.deepEqual((await lab.stopped(daemon)).filter((line) => line.startsWith('START door')), [`START door ${link.clientIp}`]);
  });
});
