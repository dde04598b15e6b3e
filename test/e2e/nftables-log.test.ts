/**
 * nftables end to end: the README's nftables rule (`log prefix`) in a ruleset loaded into a server namespace made
 * here, the real `knock` client knocking over IPv4 and IPv6, a private rsyslog writing the kernel's lines to a
 * kern.log, and the daemon following it with the `--log-prefix` recipe format: the doors open.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { needs } from '../helpers.js';
import { fileLines, waitForLine } from '../inputs/pcap-lab.js';
import { FirewallLab, LOG_ALL_NETNS, untilLogged } from './firewall-lab.js';

const skip = needs({ root: true, tools: ['ip', 'nft', 'rsyslogd', 'knock'] })
  || (existsSync(LOG_ALL_NETNS) ? false : 'needs net.netfilter.nf_log_all_netns (a kernel with nf_log_syslog)');
const lab = new FirewallLab('knf', 238);
after(() => lab.tearDown());

describe('nftables end to end: knock → nft `log prefix` → rsyslog → kern.log → knocktail → start command', { skip }, () => {
  it('opens the doors for IPv4 and IPv6 knocks, TCP and UDP steps', { timeout: 120_000 }, async () => {
    const link = lab.setUp({ kernelLog: true });
    const prefix = lab.prefix;
    // README.md's rule, on this namespace's interface, then a drop (the ports are closed anyway).
    const ruleset = join(lab.dir, 'knock.nft');
    writeFileSync(ruleset, [
      'table inet knock {',
      '  chain input {',
      '    type filter hook input priority filter - 1; policy accept;',
      `    iifname "${link.server}" meta l4proto { tcp, udp } th dport { 7000, 8000, 9000, 7999 } log prefix "${prefix} "`,
      `    iifname "${link.server}" meta l4proto { tcp, udp } th dport { 7000, 8000, 9000, 7999 } drop`,
      '  }',
      '}',
      '',
    ].join('\n'));
    lab.inServer('nft', '-f', ruleset);
    assert.match(lab.inServer('nft', 'list', 'ruleset'), new RegExp(`log prefix "${prefix} "`));

    const kernLog = join(lab.dir, 'kern.log');
    const rsyslog = lab.startRsyslog(kernLog);
    await untilLogged(kernLog, `${prefix} IN=`, () => lab.knock(link.serverIp, '7999'), () => rsyslog.process.output);

    const commands = join(lab.dir, 'commands');
    const conf = join(lab.dir, 'knocktail.conf');
    writeFileSync(conf, [
      '[options]',
      `  FirewallLog = ${kernLog}`,
      '  LogFormat = knock',
      `  StateDir = ${join(lab.dir, 'state')}`,
      `  LogFile = ${join(lab.dir, 'knocktail.log')}`,
      '<logformat knock>',
      `  required = {{kernel}}${prefix} {{netfilter}}`,
      '</logformat>',
      '[door]',
      '  sequence = 7000,8000:udp,9000',
      '  tcpflags = syn',
      `  start_command = echo "START door %IP%" >> ${commands}`,
      '',
    ].join('\n'));
    const daemon = await lab.daemon(conf);
    lab.knock(link.serverIp, '7000', '8000:udp', '9000');
    lab.knock('-6', link.serverIp6, '7000', '8000:udp', '9000');
    await waitForLine(commands, `START door ${link.clientIp}`);
    await waitForLine(commands, `START door ${link.clientIp6}`);
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, daemon.output);
    assert.deepEqual(fileLines(commands).sort(), [`START door ${link.clientIp}`, `START door ${link.clientIp6}`].sort());
  });
});
