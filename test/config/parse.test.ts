import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fixture, isRoot, repoRoot, tempDir } from '../helpers.js';
import { defaultOptions, loadConfig, parseConfigText } from '../../src/config/parse.js';
import { ConfigError } from '../../src/config/types.js';
import { TCP_ACK, TCP_FIN, TCP_SYN } from '../../src/hit.js';
import { CONF, door, doorProblem, parse, problem, problems } from './support.js';

// ---- lexical rules (knockd §2.1) --------------------------------------------------------------

test('blank lines, comments and indented comments are skipped; a later # is data', () => {
  const config = parse(['# top', '', '   # indented', '[d]', '\t# inside', 'sequence = 7000', 'command = echo hi # not a comment', ''].join('\n'));
  assert.equal(config.doors[0]!.startCommand, 'echo hi # not a comment');
});

test('inline "#" after a port is data, so an error (knockd: atoi stops there and keeps 7000)', () => {
  const p = problem('[d]\nsequence = 7000 # ssh\n');
  assert.equal(p.at.line, 2);
  assert.match(p.message, /port "7000 # ssh" is invalid/);
});

test('keys are trimmed and case-insensitive, values trimmed and keep case and further "="', () => {
  const d = door('  SeQ_TiMeOuT   =   7  \nSEQUENCE=7000\nstart_command = echo A=B  C==D \t');
  assert.equal(d.seqTimeout, 7);
  assert.equal(d.startCommand, 'echo A=B  C==D');
});

test('a byte order mark before the first line is ignored', () => {
  assert.equal(parse('\uFEFF[d]\nsequence = 7000\n').doors.length, 1);
});

test('section names are kept untrimmed; surrounding blanks warn', () => {
  const config = parse('[ my door ]\nsequence = 7000\n');
  assert.equal(config.doors[0]!.name, ' my door ');
  assert.equal(config.warnings.length, 1);
  assert.equal(config.warnings[0]!.at.line, 1);
  assert.match(config.warnings[0]!.hint!, /write \[my door\]/);
});

test('[options] may repeat anywhere; doors keep file order; duplicate door names are both active, with a warning', () => {
  const config = parse(['[options]', 'logfile = /a', '[b]', 'sequence = 1', '[options]', 'pidfile = /p', '[a]', 'sequence = 2', '[b]', 'sequence = 3'].join('\n'));
  assert.deepEqual(
    config.doors.map((d) => [d.name, d.sequence[0]!.port, d.at.line]),
    [
      ['b', 1, 3],
      ['a', 2, 7],
      ['b', 3, 9],
    ],
  );
  assert.equal(config.options.logFile, '/a');
  assert.equal(config.options.pidFile, '/p');
  assert.equal(config.warnings.length, 1);
  assert.equal(config.warnings[0]!.at.line, 9);
  assert.match(config.warnings[0]!.message, /door "b" is defined again \(first at line 3\)/);
});

test('empty section name and unterminated header are errors', () => {
  const [empty, open] = problems('[]\nsequence = 1\n[door\n');
  assert.equal(empty!.at.line, 1);
  assert.match(empty!.message, /empty section name/);
  assert.equal(open!.at.line, 3);
  assert.match(open!.message, /does not end with "\]"/);
});

test('a directive with nothing before "=" is an error', () => {
  const p = doorProblem('= 5');
  assert.equal(p.at.line, 3);
  assert.match(p.message, /no directive name/);
});

// ---- door directives (knockd §2.3) ------------------------------------------------------------

test('door defaults match knockd (25 s, 10 s, no flags, no commands) plus knocktail defaults', () => {
  const d = door('sequence = 7000');
  assert.deepEqual(d, {
    name: 'door',
    at: { file: CONF, line: 1 },
    sequence: [{ port: 7000, proto: 'tcp' }],
    oneTimeSequences: null,
    rolling: null,
    seqTimeout: 25,
    tcpFlags: { set: 0, clear: 0 },
    startCommand: null,
    startCommand6: null,
    stopCommand: null,
    stopCommand6: null,
    cmdTimeout: 10,
    target: null,
    allowFrom: [],
    ignoreRepeats: false,
    onReopen: 'extend',
    commandLimit: null,
    knockScope: 'firewall',
    lines: { Sequence: 2 },
    encrypted: null,
  });
});

test('aliases: Timeout, Command and Command_6 (knockd: same)', () => {
  const d = door('sequence = 1\ntimeout = 3\ncommand = start4\ncommand_6 = start6');
  assert.equal(d.seqTimeout, 3);
  assert.equal(d.startCommand, 'start4');
  assert.equal(d.startCommand6, 'start6');
});

test('every door directive lands in its field', () => {
  const d = door(
    [
      'sequence = 7000,8000:udp',
      'seq_timeout = 0',
      'start_command = a %IP%',
      'start_command_6 = b %IP%',
      'cmd_timeout = 0',
      'stop_command = c',
      'stop_command_6 = d',
      'target = 192.0.2.7',
      'allow_from = 198.51.100.0/24,2001:DB8::1',
      'ignore_repeats = on',
      'on_reopen = ReRun',
      'command_limit = 0',
    ].join('\n'),
  );
  assert.deepEqual(d.sequence, [
    { port: 7000, proto: 'tcp' },
    { port: 8000, proto: 'udp' },
  ]);
  assert.equal(d.seqTimeout, 0);
  assert.deepEqual([d.startCommand, d.startCommand6, d.stopCommand, d.stopCommand6], ['a %IP%', 'b %IP%', 'c', 'd']);
  assert.equal(d.cmdTimeout, 0);
  assert.equal(d.target, '192.0.2.7');
  assert.deepEqual(
    d.allowFrom.map((cidr) => cidr.text),
    ['198.51.100.0/24', '2001:db8::1/128'],
  );
  assert.equal(d.ignoreRepeats, true);
  assert.equal(d.onReopen, 'rerun');
  assert.equal(d.commandLimit, 0);
});

test('repeated string directives: the last wins, with a warning naming both lines (knockd: last wins)', () => {
  const config = parse('[d]\nsequence = 1\ncommand = first\ncommand = second\nsequence = 2\n');
  const d = config.doors[0]!;
  assert.equal(d.startCommand, 'second');
  assert.deepEqual(d.sequence, [{ port: 2, proto: 'tcp' }]);
  assert.deepEqual(
    config.warnings.map((w) => [w.at.line, w.message]),
    [
      [4, 'Start_Command is set again in door [d]; this line replaces line 3'],
      [5, 'Sequence is set again in door [d]; this line replaces line 2'],
    ],
  );
});

test('TCPFlags accumulates across lines; a later token for the same flag wins (knockd: same)', () => {
  const config = parse('[d]\nsequence = 1\ntcpflags = syn,ack\ntcpflags = !ack,fin\n');
  assert.deepEqual(config.doors[0]!.tcpFlags, { set: TCP_SYN | TCP_FIN, clear: TCP_ACK });
  assert.deepEqual(config.warnings, []);
});

test('TCPFlags: a flag both required and forbidden on one line is an error (knockd keeps the last)', () => {
  const p = doorProblem('tcpflags = syn,!syn');
  assert.equal(p.at.line, 3);
  assert.match(p.message, /^TCPFlags: SYN both required and forbidden/);
});

test('TCPFlags: unknown or empty tokens are errors naming the token', () => {
  assert.match(doorProblem('tcpflags = syn,foo').message, /unknown TCP flag "FOO"/);
  assert.match(doorProblem('tcpflags = syn,').message, /empty flag/);
});

test('empty command = configured empty (""), distinct from absent (null)', () => {
  const d = door('sequence = 1\nstart_command =\ncommand_6 =\nstop_command = \t');
  assert.equal(d.startCommand, '');
  assert.equal(d.startCommand6, '');
  assert.equal(d.stopCommand, '');
  assert.equal(d.stopCommand6, null);
});

test('a door directive without "=" needs a value (knockd: syntax error)', () => {
  const p = doorProblem('command');
  assert.match(p.message, /"Start_Command" needs a value/);
  assert.equal(p.hint, 'write Start_Command = …');
});

// ---- validation ---------------------------------------------------------------------------------

test('Seq_Timeout / Cmd_Timeout / Command_Limit: negatives and words are errors (knockd: atoi)', () => {
  for (const [key, value] of [
    ['seq_timeout', '-5'],
    ['timeout', 'abc'],
    ['cmd_timeout', '-1'],
    ['cmd_timeout', '1.5'],
    ['command_limit', 'ten'],
    ['seq_timeout', ''],
  ] as const) {
    const p = doorProblem(`${key} = ${value}`);
    assert.match(p.message, new RegExp(`expected a whole number of seconds from 0 to \\d+, got "${value.replace('.', '\\.')}"`), `${key} = ${value}`);
  }
});

test('numbers too large for timers and buffers are errors with the bound (they would overflow setTimeout)', () => {
  for (const [line, bound] of [
    ['seq_timeout = 2147484', '2147483'],
    ['command_limit = 99999999', '2147483'],
    ['cmd_timeout = 9999999999999', '31622400'],
  ] as const) {
    const p = doorProblem(line);
    assert.match(p.message, new RegExp(`from 0 to ${bound}, got`), line);
    assert.equal(p.hint, `${bound} is the most knocktail accepts here`);
  }
  assert.equal(doorProblem('cmd_timeout = 31622401').hint, '31622400 is the most knocktail accepts here');
});

test('Seq_Timeout 0: a multi-step door warns it can never open; a one-step door does not', () => {
  const config = parse('[multi]\nsequence = 1,2\nseq_timeout = 0\n[single]\nsequence = 3\nseq_timeout = 0\n');
  assert.deepEqual(config.doors.map((d) => d.seqTimeout), [0, 0]);
  assert.equal(config.warnings.length, 1);
  assert.equal(config.warnings[0]!.at.line, 3);
  assert.match(config.warnings[0]!.message, /\[multi\] has 2 steps and Seq_Timeout 0, so it can never open/);
});

test('Target is stored canonical (knockd compared the text as written)', () => {
  assert.equal(door('sequence = 1\ntarget = 2001:DB8:0:0:0:0:0:10').target, '2001:db8::10');
  assert.equal(door('sequence = 1\ntarget = 10.88.0.50').target, '10.88.0.50');
});

test('Target: host names, ranges and garbage are errors with a hint', () => {
  const host = doorProblem('target = gateway.example.org');
  assert.match(host.message, /^Target: "gateway\.example\.org" is not an IP address/);
  assert.match(host.hint!, /host name never matched/);
  assert.match(doorProblem('target = 10.0.0.0/24').hint!, /use Allow_From/);
  assert.match(doorProblem('target = 10.0.0.256').hint!, /write one IPv4 or IPv6 address/);
});

test('Allow_From: each element must be an address or range', () => {
  assert.match(doorProblem('allow_from = 10.0.0.0/24, nonsense').message, /^Allow_From: "nonsense" is not an IPv4 or IPv6 address/);
  assert.match(doorProblem('allow_from = 10.0.0.0/33').message, /prefix length/);
  assert.match(doorProblem('allow_from = 10.0.0.1,,10.0.0.2').message, /empty address range/);
});

test('Ignore_Repeats and On_Reopen accept only their words', () => {
  assert.match(doorProblem('ignore_repeats = sometimes').message, /^Ignore_Repeats: expected yes or no, got "sometimes"/);
  assert.match(doorProblem('on_reopen = restart').message, /^On_Reopen: expected extend or rerun, got "restart"/);
});

test('a door with neither Sequence nor One_Time_Sequences is an error at its header (knockd: same)', () => {
  const p = problem('[options]\nlogfile = /x\n[empty]\ncommand = true\n');
  assert.equal(p.at.line, 3);
  assert.match(p.message, /door \[empty\] has no Sequence/);
});

test('an invalid Sequence is reported once, not again as a missing one', () => {
  const p = problem('[d]\nsequence = 0\n');
  assert.equal(p.at.line, 2);
});

test('One_Time_Sequences: an existing read-write file is resolved against the config directory; sequence left empty', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'otp.txt'), ' 1001,1002\n');
  const config = parseConfigText('[vault]\none_time_sequences = otp.txt\ncommand = unseal %IP%\n', join(dir, 'knockd.conf'));
  assert.equal(config.doors[0]!.oneTimeSequences, join(dir, 'otp.txt'));
  assert.deepEqual(config.doors[0]!.sequence, []);
});

test('One_Time_Sequences: missing file, directory, or not writable are errors', () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'sub'));
  const conf = join(dir, 'knockd.conf');
  const missing = problem('[d]\none_time_sequences = nope.txt\n', conf);
  assert.match(missing.message, new RegExp(`^One_Time_Sequences: cannot use ${join(dir, 'nope.txt')}: ENOENT`));
  assert.match(problem('[d]\none_time_sequences = sub\n', conf).message, /is not a regular file/);
});

test('One_Time_Sequences: a read-only file is an error', () => {
  const dir = tempDir();
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'ro.txt'), '1001\n');
  chmodSync(join(dir, 'ro.txt'), 0o444);
  // Root may write any file, so under root the parse runs in a child process as nobody.
  const parseModule = pathToFileURL(join(repoRoot, 'dist', 'src', 'config', 'parse.js')).href;
  const script = `const { parseConfigText } = await import(${JSON.stringify(parseModule)});
    try { parseConfigText('[d]\\none_time_sequences = ro.txt\\n', ${JSON.stringify(join(dir, 'knockd.conf'))}); console.log('accepted'); }
    catch (error) { console.log(error.message); }`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', ...(isRoot ? { uid: 65534, gid: 65534 } : {}) });
  assert.equal(result.stderr, '');
  assert.match(result.stdout, /:2: One_Time_Sequences: .*ro\.txt must be readable and writable: EACCES/);
});

test('Sequence and One_Time_Sequences in one door is an error at the later line', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'otp.txt'), '1001\n');
  const p = problem('[d]\none_time_sequences = otp.txt\nsequence = 1\n', join(dir, 'knockd.conf'));
  assert.equal(p.at.line, 3);
  assert.match(p.message, /both Sequence \(line 3\) and One_Time_Sequences \(line 2\)/);
});

test('%DOOR% in a command needs a shell-safe door name', () => {
  assert.equal(door('sequence = 1\ncommand = logger "%DOOR%"').name, 'door');
  const config = parse('[ssh@web-1.example+v6_x]\nsequence = 1\nstop_command = logger %DOOR%\ncommand = x\n');
  assert.equal(config.doors[0]!.name, 'ssh@web-1.example+v6_x');
  for (const name of ['open ssh', 'a;rm -rf /', '$(id)', 'x`y`']) {
    const p = problem(`[${name}]\nsequence = 1\ncommand = logger %DOOR%\n`);
    assert.equal(p.at.line, 1);
    assert.match(p.message, /cannot be used as %DOOR%/, name);
  }
  // Without %DOOR% any name is fine, as in knockd.
  assert.equal(parse('[open ssh; yes]\nsequence = 1\ncommand = true\n').doors[0]!.name, 'open ssh; yes');
});

test('a stop command without a start command warns that it never runs (knockd: same)', () => {
  const config = parse('[nostart]\nsequence = 7100\nstop_command = echo stop\n');
  assert.equal(config.warnings.length, 1);
  assert.match(config.warnings[0]!.message, /stop command never runs/);
});

// ---- [options] (knockd §2.2 plus knocktail's) ---------------------------------------------------

test('defaultOptions: documented defaults, a fresh object each time', () => {
  const options = defaultOptions();
  assert.deepEqual(options, {
    useSyslog: false,
    logFile: null,
    pidFile: null,
    interfaces: [],
    mode: 'file',
    firewallLogs: ['/var/log/kern.log'],
    nflogPrefix: null,
    maxFollowedFiles: 1000,
    logFormats: ['iptables'],
    stateDir: '/var/lib/knocktail',
    maxSources: 100000,
    maxKnockAge: 60,
    commandLimit: 60,
    maxLineLength: 65536,
    allowForgeableLog: false,
    onStartCommand: null,
    onStopCommand: null,
    closeOnExit: false,
    promiscuous: false,
  });
  options.firewallLogs.push('/x');
  assert.deepEqual(defaultOptions().firewallLogs, ['/var/log/kern.log']);
  assert.deepEqual(parse('').options, defaultOptions());
});

test('every option, with where it was set', () => {
  const lines = [
    '[options]',
    'UseSyslog',
    'LogFile = /var/log/knocktail.log',
    'PidFile = /run/knocktail.pid',
    'Interface = eth0, wg0',
    'Mode = PCAP',
    'FirewallLog = /var/log/kern.log,journal,kmsg,nflog:5',
    'NflogPrefix = knock:',
    'MaxFollowedFiles = 7',
    'LogFormat = iptables, nft.v2',
    'StateDir = /srv/knock',
    'MaxSources = 1',
    'MaxKnockAge = 120',
    'CommandLimit = 0',
    'MaxLineLength = 256',
    'AllowForgeableLog = true',
    'OnStart = /usr/local/bin/up',
    'OnStop =',
    'CloseOnExit = on',
    'Promiscuous = 1',
  ];
  const config = parse(lines.join('\n'));
  assert.deepEqual(config.options, {
    useSyslog: true,
    logFile: '/var/log/knocktail.log',
    pidFile: '/run/knocktail.pid',
    interfaces: ['eth0', 'wg0'],
    mode: 'pcap',
    firewallLogs: ['/var/log/kern.log', 'journal', 'kmsg', 'nflog:5'],
    nflogPrefix: 'knock:',
    maxFollowedFiles: 7,
    logFormats: ['iptables', 'nft.v2'],
    stateDir: '/srv/knock',
    maxSources: 1,
    maxKnockAge: 120,
    commandLimit: 0,
    maxLineLength: 256,
    allowForgeableLog: true,
    onStartCommand: '/usr/local/bin/up',
    onStopCommand: '',
    closeOnExit: true,
    promiscuous: true,
  });
  const at = Object.fromEntries(Object.entries(config.optionsAt).map(([key, ref]) => [key, ref.line]));
  assert.deepEqual(at, {
    useSyslog: 2,
    logFile: 3,
    pidFile: 4,
    interfaces: 5,
    mode: 6,
    firewallLogs: 7,
    nflogPrefix: 8,
    maxFollowedFiles: 9,
    logFormats: 10,
    stateDir: 11,
    maxSources: 12,
    maxKnockAge: 13,
    commandLimit: 14,
    maxLineLength: 15,
    allowForgeableLog: 16,
    onStartCommand: 17,
    onStopCommand: 18,
    closeOnExit: 19,
    promiscuous: 20,
  });
  assert.equal(config.optionsAt.logFile!.file, CONF);
});

test('UseSyslog: bare (knockd) and = yes|no (knocktail; knockd rejects it)', () => {
  assert.equal(parse('[options]\nusesyslog\n').options.useSyslog, true);
  assert.equal(parse('[options]\nUseSyslog = off\n').options.useSyslog, false);
  assert.equal(parse('[options]\nUseSyslog = YES\n').options.useSyslog, true);
  assert.match(problem('[options]\nUseSyslog = maybe\n').message, /^UseSyslog: expected yes or no/);
});

test('a bare UseSyslog inside a door turns syslog on, as in knockd, with a warning', () => {
  const config = parse('[d]\nsequence = 1\nUseSyslog\n');
  assert.equal(config.options.useSyslog, true);
  assert.equal(config.optionsAt.useSyslog!.line, 3);
  assert.equal(config.warnings.length, 1);
  assert.equal(config.warnings[0]!.hint, 'move it to [options]');
});

test('relative paths resolve against the config file directory, not the working directory', () => {
  const config = parse('[options]\nLogFile = log/k.log\nPidFile = ../run/k.pid\nFirewallLog = kern.log, journal, /abs/kern.log\nStateDir = state\n', '/srv/knock/etc/knockd.conf');
  assert.equal(config.options.logFile, '/srv/knock/etc/log/k.log');
  assert.equal(config.options.pidFile, '/srv/knock/run/k.pid');
  assert.deepEqual(config.options.firewallLogs, ['/srv/knock/etc/kern.log', 'journal', '/abs/kern.log']);
  assert.equal(config.options.stateDir, '/srv/knock/etc/state');
});

test('option values are validated', () => {
  const cases: Array<[string, RegExp]> = [
    ['MaxSources = 0', /^MaxSources: expected a whole number of sources from 1 to 10000000, got "0"/],
    ['MaxLineLength = 255', /^MaxLineLength: expected a whole number of bytes from 256 to 16777216/],
    ['MaxLineLength = 10000000000', /from 256 to 16777216, got "10000000000"/],
    ['CommandLimit = -1', /^CommandLimit: expected a whole number of seconds/],
    ['MaxSources = 1e5', /got "1e5"/],
    ['MaxKnockAge = 0', /^MaxKnockAge: expected a whole number of seconds from 1 to 86400, got "0"/],
    ['MaxKnockAge = 86401', /from 1 to 86400, got "86401"/],
    ['Mode = tail', /^Mode: expected file or pcap, got "tail"/],
    ['Promiscuous = maybe', /^Promiscuous: expected yes or no/],
    ['LogFormat = iptables, my format', /"my format" is not a format name/],
    ['LogFormat = iptables,', /empty format name/],
    ['FirewallLog = /var/log/kern.log, /var/log/../log/kern.log', /\/var\/log\/kern\.log is listed twice/],
    ['Interface = eth0,this-name-is-too-long', /"this-name-is-too-long" is not an interface name/],
    ['LogFile =', /^LogFile: expected a path/],
    ['StateDir', /"StateDir" needs a value/],
  ];
  for (const [line, expected] of cases) {
    const p = problem(`[options]\n${line}\n`);
    assert.equal(p.at.line, 2, line);
    assert.match(p.message, expected, line);
  }
});

test('a repeated option: the last wins, with a warning', () => {
  const config = parse('[options]\nLogFile = /a\n[options]\nLogFile = /b\n');
  assert.equal(config.options.logFile, '/b');
  assert.equal(config.optionsAt.logFile!.line, 4);
  assert.match(config.warnings[0]!.message, /LogFile is set again; this line replaces line 2/);
});

// ---- misplaced and unknown directives -----------------------------------------------------------

test('a door directive in [options] is an error with a hint', () => {
  const p = problem('[options]\nsequence = 1\n');
  assert.equal(p.message, '"Sequence" belongs in a door section, not [options]');
  assert.match(p.hint!, /\[door name\]/);
});

test('an option in a door is an error with a hint', () => {
  const p = doorProblem('LogFile = /x');
  assert.equal(p.message, '"LogFile" belongs in [options], not in door [door]');
  assert.equal(p.hint, 'move it to the [options] section');
});

test('unknown keys get a did-you-mean hint for the section they are in, then the other section', () => {
  assert.equal(doorProblem('sequense = 1').hint, 'did you mean Sequence?');
  assert.equal(doorProblem('seq_timout = 1').hint, 'did you mean Seq_Timeout?');
  assert.equal(doorProblem('startcommand = x').hint, 'did you mean Start_Command?');
  assert.equal(doorProblem('tcp_flags = syn').hint, 'did you mean TCPFlags?');
  assert.equal(doorProblem('Firewall_Log = /x').hint, 'did you mean FirewallLog? (it belongs in [options])');
  assert.equal(problem('[options]\nlog_file = /x\n').hint, 'did you mean LogFile?');
  assert.equal(problem('[options]\nsequnce = 1\n').hint, 'did you mean Sequence? (it belongs in a door)');
  assert.equal(problem('[options]\nMaxSource = 5\n').hint, 'did you mean MaxSources?');
  const far = doorProblem('colour = blue');
  assert.equal(far.message, 'unknown directive "colour"');
  assert.match(far.hint!, /^known directives here: Sequence, One_Time_Sequences, Seq_Timeout, Timeout, TCPFlags/);
});

test('the door-level Command_Limit and the global CommandLimit are told apart', () => {
  assert.equal(door('sequence = 1\ncommand_limit = 5').commandLimit, 5);
  assert.equal(doorProblem('CommandLimit = 5').message, '"CommandLimit" belongs in [options], not in door [door]');
});

// ---- error collection ---------------------------------------------------------------------------

test('every problem is reported at once, in line order, each with its line', () => {
  const text = [
    'logfile = /early', // 1: before any section
    '[options]',
    'MaxSources = none', // 3
    '[a]',
    'sequence = 7000,-1', // 5
    'tcpflags = syn, bogus', // 6
    'seq_timeout = 5',
    'cmd_timeout = -3', // 8
    '[b]', // 9: no sequence (reported at the header)
    'command = x',
    'target = example.org', // 11
  ].join('\n');
  const diagnostics = problems(text);
  assert.deepEqual(
    diagnostics.map((d) => d.at.line),
    [1, 3, 5, 6, 8, 9, 11],
  );
  assert.ok(diagnostics.every((d) => d.at.file === CONF));
  let error: unknown;
  try {
    parseConfigText(text, CONF);
  } catch (caught) {
    error = caught;
  }
  assert.ok(error instanceof ConfigError);
  assert.match(error.message, /^\/etc\/knocktail\/knockd\.conf:1: "logfile" comes before any section\n {2}fix: /);
  assert.match(error.message, /\n\/etc\/knocktail\/knockd\.conf:5: Sequence: port "-1" is invalid: ports are 1-65535\n/);
});

// ---- files ----------------------------------------------------------------------------------------

test('loadConfig: a path relative to the working directory; Config.path is absolute', () => {
  const config = loadConfig(relative(process.cwd(), fixture('conf', 'knockd-stock.conf')));
  assert.equal(config.path, join(repoRoot, 'fixtures', 'conf', 'knockd-stock.conf'));
  assert.deepEqual(
    config.doors.map((d) => d.name),
    ['openSSH', 'closeSSH', 'openHTTPS'],
  );
  assert.equal(config.options.useSyslog, true);
  assert.deepEqual(config.warnings, []);
});

test('loadConfig: relative paths inside resolve against the config file (realistic knocktail config)', () => {
  const config = loadConfig(fixture('conf', 'knocktail.conf'));
  assert.equal(config.options.logFile, fixture('conf', 'log', 'knocktail.log'));
  assert.equal(config.options.stateDir, fixture('conf', 'state'));
  assert.equal(config.doors[2]!.oneTimeSequences, fixture('conf', 'one-time-sequences.txt'));
  assert.deepEqual(config.options.logFormats, ['site-iptables', 'iptables']);
  assert.deepEqual(
    config.logFormats.map((block) => block.name),
    ['site-iptables'],
  );
  assert.deepEqual(config.warnings, []);
});

test('loadConfig: an unreadable file is an Error naming the path', () => {
  const missing = join(tempDir(), 'absent.conf');
  assert.throws(() => loadConfig(missing), (error: unknown) => {
    assert.ok(error instanceof Error && !(error instanceof ConfigError));
    assert.match(error.message, new RegExp(`^cannot read config file ${missing}: ENOENT`));
    return true;
  });
});
