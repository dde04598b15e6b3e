/** `knocktail sequence` through the real CLI, on the test vectors of docs/rolling-sequences.md. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseTime } from '../../src/commands/sequence.js';
import { runCli, tempDir } from '../helpers.js';
import { documentVectors, rollingDoor, writeSecretFile } from '../knocks/support.js';

const TIMEOUT = { timeout: 60_000 };

describe('knocktail sequence', () => {
  const dir = tempDir('knocktail-sequence-');
  const vectors = documentVectors();
  /** One config with a door per vector (door names are unique but for the two `openSSH` rows: keep the first). */
  const conf = join(dir, 'client.conf');
  const oneTime = join(dir, 'once.txt');
  writeFileSync(oneTime, '1000,2000\n');
  const doors = vectors.filter((v, index) => vectors.findIndex((w) => w.door === v.door) === index);
  writeFileSync(
    conf,
    doors
      .map((v, index) =>
        rollingDoor(v.door, writeSecretFile(dir, v.file, `${index}.secret`), `${v.first}-${v.last}${v.proto === 'udp' ? ':udp' : ''}`, [
          `sequence_length = ${v.length}`,
          `sequence_period = ${v.period}`,
        ]),
      )
      .join('') + `[fixed]\n\tsequence = 7000,8000\n[once]\n\tone_time_sequences = ${oneTime}\n`,
  );

  it('--json: each vector\'s period, sequence, next sequence and seconds left', TIMEOUT, async () => {
    for (const v of vectors) {
      const result = await runCli(['sequence', '-c', conf, '--at', String(v.time), '--json', v.door]);
      assert.equal(result.code, 0, result.stderr);
      const steps = (ports: number[]) => ports.map((port) => ({ port, protocol: v.proto }));
      assert.deepEqual(JSON.parse(result.stdout), {
        door: v.door,
        period: v.T,
        ports: steps(v.sequence),
        next: steps(v.next),
        secondsLeft: (v.T + 1) * v.period - v.time,
      });
    }
  });

  it('text: the period, seconds left, and the ports as knock takes them', TIMEOUT, async () => {
    // Period 29453759's ports from test/knocks/rolling_reference.py; the next period is the vectors' third row.
    const result = await runCli(['sequence', '-c', conf, '--at', '2026-01-01T00:59:29.5+01:00', 'openSSH']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout,
      'door [openSSH]: period 29453759 (60 s), 31 s left\n' +
        `now   ${[50049, 50035, 50010, 50019, 50047, 50042].map((port) => `${port}:udp`).join(' ')}\n` +
        `next  ${[50037, 50053, 50042, 50011, 50027, 50035].map((port) => `${port}:udp`).join(' ')}\n`,
    );
  });

  it('without --at: the sequence of now', TIMEOUT, async () => {
    const before = Math.floor(Date.now() / 30_000);
    const result = await runCli(['sequence', '-c', conf, '--json', 'ssh']);
    const after = Math.floor(Date.now() / 30_000);
    assert.equal(result.code, 0, result.stderr);
    const answer = JSON.parse(result.stdout);
    assert.ok(answer.period === before || answer.period === after, `${answer.period} not in ${before}..${after}`);
    assert.ok(answer.secondsLeft >= 1 && answer.secondsLeft <= 30);
    const at = await runCli(['sequence', '-c', conf, '--json', '--at', String(answer.period * 30), 'ssh']);
    assert.deepEqual(JSON.parse(at.stdout).ports, answer.ports);
  });

  it('exit 1 for a door that is not rolling or does not exist, 2 for a bad command line', TIMEOUT, async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['-c', conf, 'fixed'], 1, /door \[fixed\] is not a rolling door: its sequence is fixed/],
      [['-c', conf, 'once'], 1, /door \[once\] is not a rolling door: its sequences come from the one-time file .*once\.txt/],
      [['-c', conf, 'nope'], 1, /has no door \[nope\]/],
      [['-c', join(dir, 'absent.conf'), 'ssh'], 1, /cannot read config file/],
      [['-c', conf], 2, /give one DOOR name/],
      [['-c', conf, 'ssh', 'tür'], 2, /give one DOOR name/],
      [['-c', conf, '--at', 'yesterday', 'ssh'], 2, /--at "yesterday" is not a time/],
      [['-c', conf, '--bogus', 'ssh'], 2, /Unknown option '--bogus'/],
    ];
    for (const [args, code, message] of cases) {
      const result = await runCli(['sequence', ...args]);
      assert.equal(result.code, code, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stdout, '');
    }
    const help = await runCli(['sequence', '-h']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /"door", "period", "ports", "next", "secondsLeft"/);
  });
});

it('--at takes RFC 3339 with a zone, or epoch seconds; nothing else', () => {
  assert.equal(parseTime('1767225600'), 1767225600_000);
  assert.equal(parseTime('1767225600.25'), 1767225600_250);
  assert.equal(parseTime('2026-01-01T00:00:00Z'), 1767225600_000);
  assert.equal(parseTime('2026-01-01t01:00:00.5+01:00'), 1767225600_500);
  assert.equal(parseTime('2026-01-01 00:00:00z'), 1767225600_000);
  for (const bad of ['2026-01-01T00:00:00', '2026-01-01', 'Jan 1 2026', '-5', '1e9', '', 'now', '2026-13-01T00:00:00Z']) {
    assert.throws(() => parseTime(bad), /is not a time/, bad);
  }
});
