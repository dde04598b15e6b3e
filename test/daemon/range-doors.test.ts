/**
 * The real daemon with a rolling door and an encrypted door, following a log that gets kernel-like lines: a genuine
 * knock opens, its replays are refused and logged (rate-limited), and the table of used knocks in the state
 * directory keeps them refused across a restart. (A table others could edit keeps the daemon from starting:
 * test/commands/check-config.test.ts.)
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/parse.js';
import { encryptedDoorSpec } from '../../src/knocks/decoder.js';
import { RollingSequences } from '../../src/knocks/rolling.js';
import { message } from '../knocks/message-support.js';
import { writeSecretFile } from '../knocks/support.js';
import { knockLine, linesOf, type Scratch, scratch, startDaemon, statusOf, waitFor } from './harness.js';

const [OWNER, SNIFFER, OTHER] = ['198.51.100.7', '203.0.113.66', '192.0.2.44'];

/** Appends knocks from `src` on `ports`, stamped now. */
function knockPorts(s: Scratch, src: string, ports: readonly number[]): void {
  appendFileSync(s.fwLog, ports.map((port) => knockLine(src, port)).join(''));
}

const logText = (s: Scratch): string => readFileSync(s.logFile, 'utf8');

describe('daemon: a rolling door', () => {
  it('opens for the current sequence once; replays from the sniffer and the owner are refused and logged, also after a restart', async () => {
    const s = scratch('');
    // A long period: the test's knocks, its restart included, stay within the accepted periods however slow the machine.
    writeFileSync(
      s.config,
      readFileSync(s.config, 'utf8') +
        `[ssh]\n  Sequence_Secret = ${writeSecretFile(s.dir)}\n  Sequence_Ports = 40000-40999\n  Sequence_Period = 600\n  Seq_Timeout = 30\n` +
        `  Start_Command = echo "start ssh %IP%" >> ${s.commands}\n  Cmd_Timeout = 600\n  Stop_Command = echo "stop ssh %IP%" >> ${s.commands}\n`,
    );
    const rolling = new RollingSequences('ssh', loadConfig(s.config).doors[0]!.rolling!);
    const ports = rolling.sequence(rolling.periodAt(Date.now())).map((step) => step.port);
    let daemon = await startDaemon(s);
    try {
      knockPorts(s, OWNER, ports);
      await waitFor('the open', () => linesOf(s.commands).includes(`start ssh ${OWNER}`), () => daemon.output);
      knockPorts(s, SNIFFER, ports);
      knockPorts(s, OWNER, ports);
      await waitFor('two refusals', async () => (await statusOf(s)).counters.refused === 2, () => daemon.output);
      assert.match(logText(s), new RegExp(`${SNIFFER}: ssh: refused \\(replay\\): the sequence of period \\d+ was used already at \\S+ by ${OWNER}\\n`));
      assert.match(logText(s), new RegExp(`${OWNER}: ssh: OPEN SESAME \\(sequence of period \\d+\\)\\n`));
    } finally {
      assert.equal((await daemon.stop()).code, 0);
    }
    const table = join(s.stateDir, 'used-knocks.json');
    assert.equal(statSync(table).mode & 0o777, 0o600);
    assert.match(logText(s), /ssh: refused 1 more \(replay\) in the last 10 s\n/, 'the second refusal of a burst is counted, not logged');

    daemon = await startDaemon(s);
    try {
      knockPorts(s, OTHER, ports);
      await waitFor('the refusal after the restart', () => new RegExp(`${OTHER}: ssh: refused \\(replay\\)`).test(logText(s)), () => daemon.output);
    } finally {
      await daemon.stop();
    }
    assert.deepEqual(linesOf(s.commands), [`start ssh ${OWNER}`], 'no other open, before or after the restart');
  });
});

describe('daemon: an encrypted door', () => {
  const door = (s: Scratch): string =>
    `[ssh]\n  Knock_Key = ${writeSecretFile(s.dir, undefined, 'ssh.key')}\n  Port_Span = 40000-41023\n  Allowed_Ports = 22\n  Max_Duration = 600\n  Seq_Timeout = 30\n` +
    `  Start_Command = echo "start %IP% %PORT% %DURATION% %KNOCK_IP%" >> ${s.commands}\n  Stop_Command = echo "stop %IP% %PORT%" >> ${s.commands}\n`;

  it('opens the requested port for the requested time and closes it; a replay and refused requests are logged, also after a restart', async () => {
    const s = scratch('');
    writeFileSync(s.config, readFileSync(s.config, 'utf8') + door(s));
    const spec = encryptedDoorSpec(loadConfig(s.config).doors[0]!);
    const knocks = (request: { port?: number; duration?: number }): number[] =>
      message(spec, { time: Date.now(), source: OWNER, request }).map((value) => spec.span.portOf(value).port);
    const genuine = knocks({ port: 22, duration: 1 });
    let daemon = await startDaemon(s);
    try {
      knockPorts(s, OWNER, genuine);
      await waitFor('the open and, a second later, the stop', () => linesOf(s.commands).length === 2, () => daemon.output);
      assert.deepEqual(linesOf(s.commands), [`start ${OWNER} 22 1 ${OWNER}`, `stop ${OWNER} 22`]);
      assert.match(logText(s), new RegExp(`${OWNER}: ssh: OPEN SESAME \\(port 22 for 1 s\\)\\n`));
      knockPorts(s, OWNER, genuine);
      for (const port of [2222, 2223, 2224]) knockPorts(s, OWNER, knocks({ port }));
      await waitFor('four refusals', async () => (await statusOf(s)).counters.refused >= 4, () => daemon.output);
      assert.match(logText(s), new RegExp(`${OWNER}: ssh: refused \\(replay\\): message \\S+ was used already at \\S+ from ${OWNER}\\n`));
      assert.match(logText(s), new RegExp(`${OWNER}: ssh: refused \\(port\\): it asks for port 2222, which Allowed_Ports does not list\\n`));
      assert.doesNotMatch(logText(s), /port 2223/, 'alike refusals in a burst are counted');
    } finally {
      assert.equal((await daemon.stop()).code, 0);
    }
    assert.match(logText(s), /ssh: refused 2 more \(port\) in the last 10 s\n/);

    daemon = await startDaemon(s);
    try {
      knockPorts(s, OWNER, genuine);
      await waitFor('the refusal after the restart', () => (logText(s).match(/refused \(replay\)/g) ?? []).length === 2, () => daemon.output);
    } finally {
      await daemon.stop();
    }
    assert.equal(linesOf(s.commands).length, 2, 'nothing opened again');
  });
});
