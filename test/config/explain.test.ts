import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fixture, tempDir } from '../helpers.js';
import { loadConfig } from '../../src/config/parse.js';
import { debugConfigLines, explainConfig } from '../../src/config/explain.js';
import { RollingSequences } from '../../src/knocks/rolling.js';
import { rollingDoor, writeSecretFile } from '../knocks/support.js';
import { parse } from './support.js';

/** A pcap-mode config exercising the IPv6 fallback rules, empty commands and warnings. */
const PCAP_CONFIG = `[options]
Mode = pcap
Interface = eth0,eth1
Promiscuous = yes
UseSyslog
PidFile = /run/k.pid
OnStop = /bin/down
CloseOnExit = yes
CommandLimit = 0
[v6only]
sequence = 7000,8000
seq_timeout = 0
start_command_6 = echo six %IP%
stop_command = echo stop %IP%
cmd_timeout = 3
[nostart]
sequence = 7100
stop_command = echo never
command_limit = 0
[ spaced ]
sequence = 1:udp
target = 10.0.0.1
command = x
stop_command =
`;

test('explainConfig: the realistic knocktail config, in plain words', () => {
  const dir = fixture('conf');
  const expected = `config ${dir}/knocktail.conf
  mode: file, following /var/log/kern.log, the kernel journal
  log formats, tried in order: site-iptables, iptables
  state directory: ${dir}/state
  limits: 100000 sources with a knock in progress; knocks older than 60 s refused; commands killed after 20 s; log lines over 65536 bytes dropped
  logging to: ${dir}/log/knocktail.log
  at daemon start, run: /usr/local/sbin/knock-chain init
  at exit: pending stop commands are kept for the next start
  logformat blocks defined here: site-iptables (line 4)

door [openSSH] (line 23)
  knocks within 10 s of the first knock, to any destination, only from 192.0.2.0/24, 2001:db8::/32:
    1. TCP port 7000 (SYN set, ACK clear)
    2. TCP port 8000 (SYN set, ACK clear)
    3. TCP port 9000 (SYN set, ACK clear)
  an exact repeat of the previous knock is ignored
  on success from IPv4:
    run: /usr/sbin/iptables -I KNOCK -s %IP% -p tcp --dport 22 -j ACCEPT
    30 s after it finishes, run: /usr/sbin/iptables -D KNOCK -s %IP% -p tcp --dport 22 -j ACCEPT
  on success from IPv6 (Start_Command_6, Stop_Command_6):
    run: /usr/sbin/ip6tables -I KNOCK -s %IP% -p tcp --dport 22 -j ACCEPT
    30 s after it finishes, run: /usr/sbin/ip6tables -D KNOCK -s %IP% -p tcp --dport 22 -j ACCEPT
  opened again while its stop is pending: the stop is postponed

door [openHTTPS] (line 35)
  knocks within 5 s of the first knock, to 2001:db8::10, from anyone:
    1. UDP port 2222
    2. TCP port 3333 (any flags)
    3. UDP port 4444
  any other monitored knock, a repeat included, fails the attempt
  on success from IPv4:
    run: logger -t knocktail "%DOOR% opened for %IP%"
  on success from IPv6 (Start_Command_6):
    nothing runs (empty start command)
  commands killed after 5 s (Command_Limit)

door [vault] (line 44)
  one-time sequences: the first unused line of ${dir}/one-time-sequences.txt
  knocks within 25 s of the first knock, to any destination, from anyone
  any other monitored knock, a repeat included, fails the attempt
  on success (IPv4 and IPv6):
    run: /usr/local/sbin/vault-unseal %IP%
`;
  assert.equal(explainConfig(loadConfig(fixture('conf', 'knocktail.conf'))), expected);
});

test('explainConfig: pcap mode, IPv6 fallback, commands that never run, and the warnings', () => {
  const expected = `config /etc/knocktail/knockd.conf
  mode: pcap, capturing on eth0, eth1, promiscuous
  state directory: /var/lib/knocktail
  limits: 100000 sources with a knock in progress; knocks older than 60 s refused; commands are never killed; log lines over 65536 bytes dropped
  logging to: syslog
  pid file: /run/k.pid
  at daemon stop, run: /bin/down
  at exit: pending stop commands run at once

door [v6only] (line 10)
  knocks within 0 s of the first knock, to this host's addresses, from anyone:
    1. TCP port 7000 (any flags)
    2. TCP port 8000 (any flags)
  any other monitored knock, a repeat included, fails the attempt
  on success from IPv4:
    nothing runs (no start command, so the stop command never runs)
  on success from IPv6 (Start_Command_6, Stop_Command):
    run: echo six %IP%
    3 s after it finishes, run: echo stop %IP%
  opened again while its stop is pending: the stop is postponed

door [nostart] (line 16)
  knock to this host's addresses, from anyone:
    1. TCP port 7100 (any flags)
  any other monitored knock, a repeat included, fails the attempt
  on success (IPv4 and IPv6):
    nothing runs (no start command, so the stop command never runs)
  commands are never killed (Command_Limit)

door [ spaced ] (line 20)
  knock to 10.0.0.1, from anyone:
    1. UDP port 1
  any other monitored knock, a repeat included, fails the attempt
  on success (IPv4 and IPv6):
    run: x
    10 s after it finishes, nothing (empty stop command)
  opened again while its stop is pending: the stop is postponed

3 warnings:
  /etc/knocktail/knockd.conf:12: door [v6only] has 2 steps and Seq_Timeout 0, so it can never open (every attempt expires at once, as in knockd)
    fix: set Seq_Timeout to the seconds a knocker needs for the whole sequence
  /etc/knocktail/knockd.conf:16: door [nostart] has a stop command but no start command, so the stop command never runs (as in knockd)
    fix: add Start_Command
  /etc/knocktail/knockd.conf:20: the door name " spaced " has surrounding blanks, which are part of the name (as in knockd)
    fix: write [spaced]
`;
  assert.equal(explainConfig(parse(PCAP_CONFIG)), expected);
});

test('explainConfig: rerun policy, and a config without doors says so', () => {
  const text = explainConfig(parse('[d]\nsequence = 1\ncommand = a\nstop_command = b\non_reopen = rerun\n'));
  assert.match(text, /\n {2}opened again while its stop is pending: the start command runs again\n/);
  assert.match(explainConfig(parse('')), /\n\nno doors: nothing can open\n$/);
});

test('debugConfigLines: knockd -D lines for the stock knockd.conf', () => {
  const openLines = (name: string, ports: string, command: string) => [
    `config: new section: '${name}'`,
    `config: ${name}: sequence: ${ports}`,
    `config: ${name}: seq_timeout: 5`,
    'config: tcp flag: SYN',
    `config: ${name}: start_command: ${command}`,
    `config: ${name}: cmd_timeout: 10`,
  ];
  assert.deepEqual(debugConfigLines(loadConfig(fixture('conf', 'knockd-stock.conf'))), [
    "config: new section: 'options'",
    'config: usesyslog',
    ...openLines('openSSH', '7000:tcp,8000:tcp,9000:tcp', '/sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT'),
    ...openLines('closeSSH', '9000:tcp,8000:tcp,7000:tcp', '/sbin/iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT'),
    ...openLines('openHTTPS', '12345:tcp,54321:tcp,24680:tcp,13579:tcp', '/usr/local/sbin/knock_add -i -c INPUT -p tcp -d 443 -f %IP%'),
  ]);
});

test('debugConfigLines: options in file order, knocktail extras, empty commands, one-time doors', () => {
  const dir = fixture('conf');
  assert.deepEqual(debugConfigLines(loadConfig(fixture('conf', 'knocktail.conf'))), [
    "config: new section: 'options'",
    `config: log file: ${dir}/log/knocktail.log`,
    `config: state dir: ${dir}/state`,
    'config: firewall log: /var/log/kern.log,journal',
    'config: log format: site-iptables,iptables',
    'config: command limit: 20',
    'config: on start: /usr/local/sbin/knock-chain init',
    "config: new section: 'openSSH'",
    'config: openSSH: sequence: 7000:tcp,8000:tcp,9000:tcp',
    'config: openSSH: seq_timeout: 10',
    'config: tcp flag: SYN',
    'config: tcp flag: !ACK',
    'config: openSSH: start_command: /usr/sbin/iptables -I KNOCK -s %IP% -p tcp --dport 22 -j ACCEPT',
    'config: openSSH: start_command_6: /usr/sbin/ip6tables -I KNOCK -s %IP% -p tcp --dport 22 -j ACCEPT',
    'config: openSSH: cmd_timeout: 30',
    'config: openSSH: stop_command: /usr/sbin/iptables -D KNOCK -s %IP% -p tcp --dport 22 -j ACCEPT',
    'config: openSSH: stop_command_6: /usr/sbin/ip6tables -D KNOCK -s %IP% -p tcp --dport 22 -j ACCEPT',
    'config: openSSH: allow_from: 192.0.2.0/24,2001:db8::/32',
    'config: openSSH: ignore_repeats: yes',
    "config: new section: 'openHTTPS'",
    'config: openHTTPS: target: 2001:db8::10',
    'config: openHTTPS: sequence: 2222:udp,3333:tcp,4444:udp',
    'config: openHTTPS: seq_timeout: 5',
    'config: openHTTPS: start_command: logger -t knocktail "%DOOR% opened for %IP%"',
    'config: openHTTPS: start_command_6: ',
    'config: openHTTPS: cmd_timeout: 10',
    'config: openHTTPS: on_reopen: rerun',
    'config: openHTTPS: command_limit: 5',
    "config: new section: 'vault'",
    `config: vault: one time sequences file: ${dir}/one-time-sequences.txt`,
    'config: vault: seq_timeout: 25',
    'config: vault: start_command: /usr/local/sbin/vault-unseal %IP%',
    'config: vault: cmd_timeout: 10',
  ]);
});

test('debugConfigLines: no options section line when no option is set; UseSyslog = no prints nothing', () => {
  assert.deepEqual(debugConfigLines(parse('[d]\nsequence = 1\n')), ["config: new section: 'd'", 'config: d: sequence: 1:tcp', 'config: d: seq_timeout: 25', 'config: d: cmd_timeout: 10']);
  assert.deepEqual(debugConfigLines(parse('[options]\nUseSyslog = no\nMaxLineLength = 4096\n')), [
    "config: new section: 'options'",
    'config: max line length: 4096',
  ]);
});

test('explainConfig and debugConfigLines: a rolling door, without its secret or any current sequence', () => {
  const dir = tempDir('knocktail-explain-rolling-');
  const key = Buffer.from('0123456789abcdefghijklmnopqrstuv');
  const secret = writeSecretFile(dir, key);
  const config = parse(rollingDoor('ssh', secret, '40000-40999:udp', ['sequence_period = 60', 'ignore_repeats = yes', 'command = open %IP%']), join(dir, 'k.conf'));
  const text = explainConfig(config);
  const uid = process.geteuid!();
  assert.ok(
    text.endsWith(
      [
        'door [ssh] (line 1)',
        '  rolling sequence: 4 distinct ports of 40000-40999 over UDP (1000 ports, about 2^39 possible sequences), a new one every 60 s',
        '    the sequences of the periods just before and after count too (clocks 60 s apart still work); each opens the door once, for one knocker',
        `  secret: ${secret}: 32-byte key, owner ${uid === 0 ? 'root' : `uid ${uid}`}, mode 0600 (a regular file only its owner can read)`,
        '  knocks within 25 s of the first knock, to any destination, from anyone',
        '  any other knock on the range (but an exact repeat of the previous one, which is ignored) fails the attempt',
        '  on success (IPv4 and IPv6):',
        '    run: open %IP%',
        '',
      ].join('\n'),
    ),
    text,
  );
  // Nothing of the key, and none of the sequences around now (or the port list format a client would paste).
  assert.ok(!text.includes('0123456789') && !text.includes(key.toString('hex').slice(0, 16)));
  const rolling = new RollingSequences('ssh', config.doors[0]!.rolling!);
  const now = rolling.window(Date.now());
  const withoutRange = text.replace('40000-40999', '');
  for (const { steps } of now.accepted) {
    assert.ok(!steps.some((step) => withoutRange.includes(String(step.port))), `a port of the current window in:\n${text}`);
  }
  assert.deepEqual(debugConfigLines(config), [
    "config: new section: 'ssh'",
    `config: ssh: sequence_secret: ${secret}`,
    'config: ssh: sequence_ports: 40000-40999:udp',
    'config: ssh: sequence_length: 4',
    'config: ssh: sequence_period: 60',
    'config: ssh: seq_timeout: 25',
    'config: ssh: start_command: open %IP%',
    'config: ssh: cmd_timeout: 10',
    'config: ssh: ignore_repeats: yes',
  ]);
});

test('explainConfig: a rolling TCP door names its flags', () => {
  const dir = tempDir('knocktail-explain-rolling-');
  const text = explainConfig(parse(rollingDoor('d', writeSecretFile(dir), '1000-1999', ['tcpflags = syn,!ack', 'sequence_length = 1']), join(dir, 'k.conf')));
  assert.match(text, /\n {2}rolling sequence: 1 distinct port of 1000-1999 over TCP with SYN set, ACK clear \(1000 ports, about 2\^9 possible sequences\), a new one every 30 s\n/);
  assert.match(text, /\n {2}knock to any destination, from anyone\n {2}any other knock on the range, a repeat included, fails the attempt\n/);
});
