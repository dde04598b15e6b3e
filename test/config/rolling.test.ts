import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/parse.js';
import { parsePortRange } from '../../src/config/rolling.js';
import { tempDir } from '../helpers.js';
import { rollingDoor, writeSecretFile } from '../knocks/support.js';
import { parse, problem, problems } from './support.js';

const dir = tempDir('knocktail-rolling-conf-');
const secret = writeSecretFile(dir);
const conf = join(dir, 'knocktail.conf');

describe('a rolling door', () => {
  test('is parsed with its secret, range, and the defaults (4 knocks, 30 s); it has no fixed sequence', () => {
    const door = parse(rollingDoor('ssh', secret, '40000-40999'), conf).doors[0]!;
    assert.deepEqual(door.sequence, []);
    assert.equal(door.oneTimeSequences, null);
    const rolling = door.rolling!;
    assert.equal(rolling.secret.path, secret);
    assert.equal(rolling.secret.size, 32);
    assert.deepEqual(rolling.ports, { first: 40000, last: 40999, proto: 'tcp' });
    assert.equal(rolling.length, 4);
    assert.equal(rolling.period, 30);
  });

  test('takes Sequence_Length, Sequence_Period and :udp; keys in any case; a relative secret path starts at the config directory', () => {
    const door = parse('[d]\nSEQUENCE_SECRET = door.secret\nsequence_ports = 50000 - 50999 : UDP\nSequence_Length = 6\nsequence_period = 60\n', conf).doors[0]!;
    assert.equal(door.rolling!.secret.path, secret);
    assert.deepEqual(door.rolling!.ports, { first: 50000, last: 50999, proto: 'udp' });
    assert.equal(door.rolling!.length, 6);
    assert.equal(door.rolling!.period, 60);
  });

  test('loadConfig accepts a client copy holding only the rolling door (no [options], no commands)', () => {
    const file = join(dir, 'client.conf');
    writeFileSync(file, rollingDoor('ssh', 'door.secret', '40000-40999'));
    const config = loadConfig(file);
    assert.equal(config.doors.length, 1);
    assert.equal(config.doors[0]!.rolling!.secret.path, secret);
    assert.deepEqual(config.warnings, []);
  });
});

test('Sequence_Ports: LOW-HIGH[:tcp|udp] within 1-65535', () => {
  assert.deepEqual(parsePortRange('1-65535'), { first: 1, last: 65535, proto: 'tcp' });
  assert.deepEqual(parsePortRange('7000-7000:tcp'), { first: 7000, last: 7000, proto: 'tcp' });
  for (const [value, message] of [
    ['40000', /is not a port range/],
    ['40000-', /is not a port range/],
    ['a-b', /is not a port range/],
    ['-5-10', /is not a port range/],
    ['0-100', /outside 1-65535/],
    ['100-65536', /outside 1-65535/],
    ['50-40', /starts above its end/],
    ['1-100:icmp', /protocol "icmp" is invalid/],
    ['1-100,200-300', /is not a port range/],
  ] as const) {
    const p = problem(rollingDoor('d', secret, value), conf);
    assert.equal(p.at.line, 3, value);
    assert.match(p.message, /^Sequence_Ports: /);
    assert.match(p.message, message, value);
  }
});

test('Sequence_Length 1-32 and Sequence_Period 10-86400 seconds', () => {
  for (const [line, message] of [
    ['sequence_length = 0', /Sequence_Length: expected a whole number of knocks from 1 to 32, got "0"/],
    ['sequence_length = 33', /from 1 to 32, got "33"/],
    ['sequence_length = four', /got "four"/],
    ['sequence_period = 9', /Sequence_Period: expected a whole number of seconds from 10 to 86400, got "9"/],
    ['sequence_period = 86401', /got "86401"/],
  ] as const) {
    const p = problem(rollingDoor('d', secret, '40000-40999', [line]), conf);
    assert.equal(p.at.line, 4);
    assert.match(p.message, message);
  }
  assert.equal(parse(rollingDoor('d', secret, '1-65535', ['sequence_length = 32', 'sequence_period = 86400']), conf).doors[0]!.rolling!.length, 32);
});

test('the range must hold twice the knocks; a range allowing few sequences is accepted with a warning', () => {
  const short = problem(rollingDoor('d', secret, '40000-40007', ['sequence_length = 5']), conf);
  assert.equal(short.at.line, 4);
  assert.match(short.message, /door \[d\]: Sequence_Length 5 needs a range of at least 10 ports, but Sequence_Ports has 8/);
  assert.match(short.hint!, /widen Sequence_Ports/);
  // With the default length, the range's line is named.
  assert.equal(problem(rollingDoor('d', secret, '40000-40006'), conf).at.line, 3);
  const weak = parse(rollingDoor('d', secret, '40000-40039'), conf);
  assert.equal(weak.doors[0]!.rolling!.ports.last, 40039);
  assert.equal(weak.warnings.length, 1);
  assert.match(weak.warnings[0]!.message, /only about 2\^21 possible sequences \(4 of 40 ports\)/);
  assert.deepEqual(parse(rollingDoor('d', secret, '40000-40999'), conf).warnings, []);
});

test('exclusive with Sequence and One_Time_Sequences, named at the later line', () => {
  const withSequence = problem(`[d]\nsequence = 7000\n${rollingDoor('d', secret, '40000-40999').split('\n').slice(1).join('\n')}`, conf);
  assert.equal(withSequence.at.line, 3);
  assert.match(withSequence.message, /door \[d\] has both Sequence \(line 2\) and rolling-sequence directives \(line 3\)/);
  assert.match(withSequence.hint!, /remove Sequence/);
  const oneTime = join(dir, 'once.txt');
  writeFileSync(oneTime, '1,2,3\n');
  const withOneTime = problem(`${rollingDoor('d', secret, '40000-40999')}\tone_time_sequences = ${oneTime}\n`, conf);
  assert.equal(withOneTime.at.line, 4);
  assert.match(withOneTime.message, /both One_Time_Sequences \(line 4\) and rolling-sequence directives \(line 2\)/);
});

test('incomplete: a range without a secret, a secret without a range, a length alone', () => {
  const noSecret = problem('[d]\nsequence_ports = 40000-40999\n', conf);
  assert.equal(noSecret.at.line, 2);
  assert.match(noSecret.message, /door \[d\] has Sequence_Ports but no Sequence_Secret/);
  assert.match(noSecret.hint!, /add Sequence_Secret = FILE/);
  assert.match(problem(`[d]\nsequence_secret = ${secret}\n`, conf).message, /has Sequence_Secret but no Sequence_Ports/);
  const lengthOnly = problems('[d]\nsequence_length = 5\n', conf);
  assert.deepEqual(
    lengthOnly.map((p) => p.message),
    ['door [d] has Sequence_Length but no Sequence_Secret', 'door [d] has Sequence_Length but no Sequence_Ports'],
  );
});

test('a secret file that fails its checks is reported once, at its line, with the fix (not also as "no Sequence")', () => {
  const open = writeSecretFile(dir, undefined, 'open.secret');
  chmodSync(open, 0o644);
  const p = problem(rollingDoor('d', open, '40000-40999'), conf);
  assert.equal(p.at.line, 2);
  assert.equal(p.message, `Sequence_Secret: ${open} can be read or written by others (mode 0644): a secret only its owner may read`);
  assert.equal(p.hint, `chmod 600 ${open}`);
  const missing = problem(rollingDoor('d', 'nowhere.secret', '40000-40999'), conf);
  assert.match(missing.message, new RegExp(`cannot read ${join(dir, 'nowhere.secret')}`));
  assert.match(missing.hint!, /umask 077; head -c 24 \/dev\/urandom/);
});

test('the other door directives keep their meaning on a rolling door; Seq_Timeout 0 warns with the rolling length', () => {
  const config = parse(rollingDoor('d', secret, '40000-40999', ['seq_timeout = 0', 'tcpflags = syn,!ack', 'allow_from = 192.0.2.0/24', 'ignore_repeats = yes']), conf);
  const door = config.doors[0]!;
  assert.equal(door.seqTimeout, 0);
  assert.equal(door.ignoreRepeats, true);
  assert.equal(door.allowFrom.length, 1);
  assert.match(config.warnings[0]!.message, /door \[d\] has 4 steps and Seq_Timeout 0/);
});

test('a misspelt rolling directive gets a suggestion', () => {
  const p = problem(`${rollingDoor('d', secret, '40000-40999')}\tsequence_periode = 60\n`, conf);
  assert.equal(p.hint, 'did you mean Sequence_Period?');
});
