/**
 * nftables end to end: the README's nftables rule (`log prefix`) in a ruleset loaded into a server namespace made
 * here, the real `knock` client knocking over IPv4 and IPv6, a private rsyslog writing the kernel's lines to a
 * kern.log, and the daemon following it with the `--log-prefix` recipe format: the doors open.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { waitForLine } from '../inputs/pcap-lab.js';
import { FirewallLab, liveSkip, untilLogged } from './firewall-lab.js';

const lab = new FirewallLab('knf', 238);
after(() => lab.tearDown());

describe('nftables end to end: knock → nft `log prefix` → rsyslog → kern.log → knocktail → start command', { skip: liveSkip(['nft', 'rsyslogd'], true) }, () => {
  it('opens the doors for IPv4 and IPv6 knocks, TCP and UDP steps', { timeout: 120_000 }, async () => {
    const link = lab.setUp({ kernelLog: true });
    // README.md's rule, on this namespace's interface, then a drop (the ports are closed anyway).
    const ports = '{ 7000, 8000, 9000, 7999 }';
    const ruleset = join(lab.dir, 'knock.nft');
    writeFileSync(ruleset, [
      'table inet knock {',
      '  chain input {',
      '    type filter hook input priority filter - 1; policy accept;',
      `    iifname "${link.server}" meta l4proto { tcp, udp } th dport ${ports} log prefix "${lab.prefix} "`,
      `    iifname "${link.server}" meta l4proto { tcp, udp } th dport ${ports} drop`,
      '  }',
      '}',
      '',
    ].join('\n'));
    lab.inServer('nft', '-f', ruleset);
    assert.match(lab.inServer('nft', 'list', 'ruleset'), new RegExp(`log prefix "${lab.prefix} "`));

    const kernLog = join(lab.dir, 'kern.log');
    const rsyslog = lab.startRsyslog(kernLog);
    await untilLogged(kernLog, `${lab.prefix} IN=`, () => lab.knock(link.serverIp, '7999'), () => rsyslog.process.output);
    const conf = lab.writeConfig({ firewallLog: kernLog, logFormat: 'knock', prefixFormat: true, doors: [{ name: 'door', sequence: '7000,8000:udp,9000', tcpflags: 'syn' }] });
    const daemon = await lab.daemon(conf);
    lab.knock(link.serverIp, '7000', '8000:udp', '9000');
    lab.knock('-6', link.serverIp6, '7000', '8000:udp', '9000');
    for (const client of [link.clientIp, link.clientIp6]) await waitForLine(lab.commands, `START door ${client}`);
    assert.deepEqual(await lab.stopped(daemon), [`START door ${link.clientIp}`, `START door ${link.clientIp6}`].sort());
  });
});
