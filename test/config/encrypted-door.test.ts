import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { debugConfigLines, explainConfig } from '../../src/config/explain.js';
import { loadConfig } from '../../src/config/parse.js';
import { formatDiagnostic } from '../../src/config/types.js';
import { Matcher } from '../../src/matcher/matcher.js';
import { buildCaptureFilter } from '../../src/packet/bpf.js';
import { isRoot, tempDir } from '../helpers.js';
import { parse, problem, problems } from './support.js';
import { MemoryOneTimeFiles } from '../../src/matcher/one-time-files.js';
import { MemoryUsedKnocks } from '../../src/knocks/used.js';

let dir: string;
let key: string;
const SECRET = Buffer.from('0123456789abcdef0123456789abcdef');

before(() => {
  dir = tempDir();
  key = join(dir, 'ssh.key');
  writeFileSync(key, SECRET, { mode: 0o600 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A config with one encrypted door `[ssh]`; `extra` lines go into the door. */
const door = (extra = '', keyFile = key): string => `[ssh]\nKnock_Key = ${keyFile}\nPort_Span = 40000-41023\nAllowed_Ports = 22\n${extra}`;

describe('encrypted door directives', () => {
  it('parse into the door, with defaults', () => {
    const config = parse(door('Start_Command = open %IP% %PORT% %DURATION% %KNOCK_IP%'));
    const encrypted = config.doors[0]!.encrypted!;
    assert.deepEqual(encrypted.span, [{ proto: 'tcp', first: 40000, last: 41023 }]);
    assert.deepEqual(encrypted.allowedPorts, [{ first: 22, last: 22 }]);
    assert.equal(encrypted.maxDuration, 3600);
    assert.equal(encrypted.window, 60);
    assert.equal(encrypted.trustKnockIp, false);
    assert.deepEqual(encrypted.key.key.export(), SECRET);
    assert.deepEqual([encrypted.key.size, encrypted.key.uid, encrypted.key.mode], [32, process.geteuid!(), 0o600]);
    assert.deepEqual(config.doors[0]!.sequence, []);
    assert.deepEqual(config.warnings, []);
  });

  it('take every form: several ranges and protocols, lists, bounds, yes/no', () => {
    const config = parse(`[ssh]\nknock_key = ${key}\nPORT_SPAN = 20000-20126 , 20000-20127:udp, 30000:UDP\nport_span = 20000-20255, 30000-30255:udp\nAllowed_Ports = 22, 8000-8099\nMax_Duration = 65535\nKnock_Window = 600\nTrust_Knock_IP = yes\n`);
    const encrypted = config.doors[0]!.encrypted!;
    assert.deepEqual(encrypted.span, [{ proto: 'tcp', first: 20000, last: 20255 }, { proto: 'udp', first: 30000, last: 30255 }]);
    assert.deepEqual(encrypted.allowedPorts, [{ first: 22, last: 22 }, { first: 8000, last: 8099 }]);
    assert.equal(encrypted.maxDuration, 65535);
    assert.equal(encrypted.window, 600);
    assert.equal(encrypted.trustKnockIp, true);
    assert.ok(config.warnings.some((warning) => warning.at.line === 4 && /Port_Span is set again/.test(warning.message)));
  });

  it('refuse a span that is not a power of two from 256 to 32768 ports, with the nearest sizes', () => {
    const cases: Array<[string, RegExp, RegExp]> = [
      ['40000-40999', /the span has 1000 ports; it must have a power of two from 256 to 32768/, /make it 512 \(remove 488\) or 1024 \(add 24\) ports/],
      ['40000-40099', /has 100 ports/, /make it 256 \(add 156\) ports/],
      ['1-40000', /has 40000 ports/, /make it 32768 \(remove 7232\) ports/],
      ['1-65535', /has 65535 ports/, /32768 \(remove 32767\)/],
      ['40000-40127', /has 128 ports/, /256 \(add 128\)/],
    ];
    for (const [span, message, hint] of cases) {
      const found = problem(`[ssh]\nKnock_Key = ${key}\nPort_Span = ${span}\nAllowed_Ports = 22\n`);
      assert.equal(found.at.line, 3);
      assert.match(found.message, message, span);
      assert.match(found.hint!, hint, span);
    }
  });

  it('refuse bad ranges and overlaps', () => {
    const cases: Array<[string, RegExp]> = [
      ['40000-40255,40100-40355', /40100-40355 overlaps 40000-40255/],
      ['40000-40511:udp,40256', /40256 overlaps|the span has 513/],
      ['0-255', /not a range of ports 1-65535/],
      ['40255-40000', /not a range of ports 1-65535, low to high/],
      ['65500-65755', /not a range of ports 1-65535/],
      ['40000-40255:sctp', /protocol "sctp" in "40000-40255:sctp" is invalid/],
      ['40000-40255,', /empty port range/],
      ['forty', /"forty" is not a port or port range/],
    ];
    for (const [span, message] of cases) {
      const found = problems(`[ssh]\nKnock_Key = ${key}\nPort_Span = ${span}\nAllowed_Ports = 22\n`);
      assert.ok(found.some((d) => d.at.line === 3 && message.test(d.message)), `${span}: ${found.map(formatDiagnostic).join('; ')}`);
    }
  });

  it('refuse bad Allowed_Ports, Max_Duration, Knock_Window and Trust_Knock_IP values', () => {
    const cases: Array<[string, RegExp]> = [
      ['Allowed_Ports = 22:tcp', /Allowed_Ports lists port numbers only/],
      ['Allowed_Ports = 0', /not a range of ports/],
      ['Max_Duration = 0', /from 1 to 65535/],
      ['Max_Duration = 65536', /from 1 to 65535/],
      ['Knock_Window = 601', /from 1 to 600/],
      ['Knock_Window = 0', /from 1 to 600/],
      ['Trust_Knock_IP = maybe', /expected yes or no/],
    ];
    for (const [line, message] of cases) {
      const found = problem(door(line));
      assert.equal(found.at.line, 5, line);
      assert.match(found.message, message, line);
    }
  });

  it('need Knock_Key, Port_Span and Allowed_Ports together', () => {
    const missing = problems(`[ssh]\nMax_Duration = 60\nPort_Span = 40000-40255\n`);
    assert.deepEqual(
      missing.map((d) => `${d.at.line}: ${d.message} | ${d.hint}`),
      [
        '2: door [ssh] has Port_Span, Max_Duration but no Knock_Key | add Knock_Key = /etc/knocktail/DOOR.key (32 random bytes, chmod 600)',
        '2: door [ssh] has Port_Span, Max_Duration but no Allowed_Ports | add Allowed_Ports = 22',
      ],
    );
  });

  it('exclude Sequence, One_Time_Sequences and the rolling directives in the same door, naming both lines', () => {
    const found = problem(`${door()}Sequence = 7000\n`);
    assert.equal(found.at.line, 5);
    assert.equal(found.message, 'door [ssh] has both Sequence (line 5) and encrypted knocks (Knock_Key, line 2)');
    assert.match(found.hint!, /a door opens for one kind of knock/);
    const oneTime = join(dir, 'one-time');
    writeFileSync(oneTime, '7000,8000\n');
    const both = problem(`[ssh]\nOne_Time_Sequences = ${oneTime}\n${door().split('\n').slice(1).join('\n')}`);
    assert.equal(both.message, 'door [ssh] has both One_Time_Sequences (line 2) and encrypted knocks (Knock_Key, line 3)');
    assert.equal(both.at.line, 3);
  });

  it('warn about directives without effect, shared ports, and request placeholders in other doors', () => {
    const config = parse(`${door('Cmd_Timeout = 30\nIgnore_Repeats = yes\nAllowed_Ports = 22, 40010')}\n[plain]\nSequence = 40001,7000\nStart_Command = echo %PORT% %IP%\n`);
    const warnings = config.warnings.map((warning) => `${warning.at.line}: ${warning.message}`);
    assert.deepEqual(warnings, [
      '3: the Port_Span of door [ssh] includes 40001:tcp of door [plain] (line 8): each door\'s knocks disturb the other\'s',
      '5: Cmd_Timeout has no effect in door [ssh] with Knock_Key: the stop runs after the duration the message asks for (at most Max_Duration)',
      '6: Ignore_Repeats has no effect in door [ssh] with Knock_Key: repeated knocks never break an encrypted message',
      '7: Allowed_Ports is set again in door [ssh]; this line replaces line 4',
      '7: Allowed_Ports 40010 of door [ssh] lie on its Port_Span: once open, knocks there may no longer be logged',
      '8: %PORT% in the commands of door [plain] stays as it is: it is filled in only in doors with Knock_Key',
    ]);
  });
});

describe('Knock_Key file checks', () => {
  const keyProblem = (file: string): string => formatDiagnostic(problem(door('', file)));

  it('refuse a key file others can read or write, with the fix', () => {
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602]) {
      const file = join(dir, `mode-${mode.toString(8)}.key`);
      writeFileSync(file, SECRET, { mode });
      chmodSync(file, mode);
      const text = keyProblem(file);
      assert.match(text, new RegExp(`:2: Knock_Key: ${file} can be read or written by (others|its group) \\(mode 0${mode.toString(8)}\\)`));
      assert.match(text, new RegExp(`fix: chmod 600 ${file}`));
    }
  });

  it('refuse a key file owned by another user', { skip: isRoot ? false : 'needs root to chown' }, () => {
    const file = join(dir, 'nobody.key');
    writeFileSync(file, SECRET, { mode: 0o600 });
    chownSync(file, 65534, 65534);
    assert.match(keyProblem(file), /is owned by uid 65534, not root: whoever owns it can change the secret\n {2}fix: chown root: /);
  });

  it('refuse a missing file, a directory, a short or huge file, and a FIFO without waiting for a writer', () => {
    const short = join(dir, 'short.key');
    writeFileSync(short, 'fifteen bytes!!', { mode: 0o600 });
    const huge = join(dir, 'huge.key');
    writeFileSync(huge, Buffer.alloc(5000), { mode: 0o600 });
    const folder = join(dir, 'folder.key');
    mkdirSync(folder, { mode: 0o700 });
    const fifo = join(dir, 'fifo.key');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    assert.match(keyProblem(join(dir, 'missing.key')), /cannot read .*missing\.key: ENOENT.*\n {2}fix: create it with: /);
    assert.match(keyProblem(short), /holds 15 bytes; a secret needs at least 16 random bytes/);
    assert.match(keyProblem(huge), /holds 5000 bytes/);
    assert.match(keyProblem(folder), /is not a regular file/);
    assert.match(keyProblem(fifo), /is not a regular file/);
  });

  it('is resolved against the config file\'s directory', () => {
    mkdirSync(join(dir, 'etc'), { recursive: true });
    writeFileSync(join(dir, 'etc', 'rel.key'), SECRET, { mode: 0o600 });
    const config = parse(door('', 'rel.key'), join(dir, 'etc', 'knocktail.conf'));
    assert.equal(config.doors[0]!.encrypted!.key.path, join(dir, 'etc', 'rel.key'));
  });
});

describe('an encrypted door elsewhere', () => {
  it('never shows its key: not in JSON, inspect, check-config or -D', () => {
    const file = join(dir, 'knocktail.conf');
    writeFileSync(file, `[options]\nStateDir = ${dir}/state\n${door('Trust_Knock_IP = yes\nStart_Command = iptables -I INPUT -s %IP% -p tcp --dport %PORT% -j ACCEPT\nStop_Command = iptables -D INPUT -s %IP% -p tcp --dport %PORT% -j ACCEPT')}`);
    const config = loadConfig(file);
    const texts = [JSON.stringify(config), inspect(config, { depth: 10 }), explainConfig(config), debugConfigLines(config).join('\n'), String(config.doors[0]!.encrypted!.key)];
    for (const text of texts) {
      assert.ok(!text.includes(SECRET.toString()) && !text.includes(SECRET.toString('hex')) && !text.includes(String([...SECRET].slice(0, 4))), text.slice(0, 200));
    }
    const explained = explainConfig(config);
    for (const line of [
      `door [ssh] (line 3)`,
      `  encrypted knocks (docs/encrypted-knocks.md) to any destination, from anyone, each message within 25 s of its first knock:`,
      `    port span: 40000-41023 (1024 TCP ports = 2^10)`,
      `    a message is 21 knocks, 25 naming an IPv4 address, 39 naming an IPv6 address`,
      `    key file: ${key}: 32-byte key, owner ${process.geteuid!() === 0 ? 'root' : `uid ${process.geteuid!()}`}, mode 0600 (a regular file only its owner can read)`,
      `    may ask to open (Allowed_Ports): 22; for 1 to 3600 s`,
      `    a message naming an address opens for that address, wherever the knocks came from (Trust_Knock_IP)`,
      `    the duration the message asks for (at most 3600 s) after it finishes, run: iptables -D INPUT -s %IP% -p tcp --dport %PORT% -j ACCEPT`,
    ]) {
      assert.ok(explained.split('\n').includes(line), `missing: ${line}\n${explained}`);
    }
    assert.deepEqual(debugConfigLines(config).slice(-6), [
      `config: ssh: knock_key: ${key}`,
      'config: ssh: port_span: 40000-41023',
      'config: ssh: allowed_ports: 22',
      'config: ssh: max_duration: 3600',
      'config: ssh: knock_window: 60',
      'config: ssh: trust_knock_ip: yes',
    ]);
  });

  it('the matcher watches its span, and the capture filter takes the span as one portrange', () => {
    const config = parse(`${door('Start_Command = echo %IP%')}\n[plain]\nSequence = 7000\nStart_Command = echo %IP%\n`);
    const matcher = new Matcher(config.doors, { maxSources: 10, isLocal: null, oneTimeFiles: new MemoryOneTimeFiles(), usedKnocks: new MemoryUsedKnocks() }, () => {});
    const watch = matcher.watch();
    assert.deepEqual(watch.sequences.map(({ door: active }) => active.name), ['plain']);
    assert.deepEqual(watch.ranges.map(({ door: active, ranges }) => [active.name, ranges]), [['ssh', [{ proto: 'tcp', first: 40000, last: 41023 }]]]);
    assert.deepEqual([watch.watches('tcp', 40000), watch.watches('tcp', 41023), watch.watches('tcp', 41024), watch.watches('udp', 40000), watch.watchesPort(40500)], [true, true, false, false, true]);
    assert.equal(
      buildCaptureFilter([...watch.sequences, ...watch.ranges], null, { ipv4Only: true }),
      '(ip and (tcp dst port 7000 or tcp dst portrange 40000-41023))',
    );
  });
});
