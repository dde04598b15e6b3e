/**
 * SIGHUP through the real daemon: a broken config is rejected with file:line and the old one keeps
 * working (knockd exits); knocks in progress on unchanged doors survive; a follower whose definition did
 * not change keeps running untouched (its counters go on, nothing is read twice); FirewallLog entries
 * added and removed start and stop inputs; a changed LogFormat takes effect from where reading was;
 * the log file is re-opened (logrotate); start-up-only options say they wait for a restart.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { cursorFileName } from '../../src/inputs/log-file.js';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir, which } from '../helpers.js';
import { DaemonProcess, knock, knockLine, linesOf, recordingDoor, scratch, startDaemon, statusOf, waitFor, waitUntilRunning, writeConfig, type Scratch } from '../daemon/harness.js';
import type { InputStatus } from '../../src/inputs/input.js';

/** Sends SIGHUP and waits until the daemon counted the reload (done or failed). */
async function reload(s: Scratch, daemon: DaemonProcess): Promise<'done' | 'failed'> {
  const before = (await statusOf(s)).counters;
  daemon.signal('SIGHUP');
  let outcome: 'done' | 'failed' = 'done';
  await waitFor(
    'the reload',
    async () => {
      const now = (await statusOf(s)).counters;
      if (now.failedReloads > before.failedReloads) outcome = 'failed';
      return now.reloads > before.reloads || now.failedReloads > before.failedReloads;
    },
    () => daemon.output,
  );
  return outcome;
}

/** The site format of the README's --log-prefix recipe: only lines with our prefix count. */
const secretFormat = String.raw`<logformat secret>
  required = kernel: \[\s*\d+\.\d+\]\ SECRET\ IN=
  ipclient = \ SRC=(?<ipclient>[0-9a-f.:]+)\ 
  ipserver = \ DST=(?<ipserver>[0-9a-f.:]+)\ 
  protocol = \ PROTO=(?<protocol>TCP|UDP)\ 
  port     = \ DPT=(?<port>\d+)\ 
</logformat>`;

describe('daemon: SIGHUP', () => {
  it('rejects a broken config with file:line and keeps running on the old one', async () => {
    const door = recordingDoor('door', '7000');
    const s = scratch(door);
    const daemon = await startDaemon(s);
    writeConfig(s, `${door}\n[broken]\n  sequence = 7000,0\n`);
    assert.equal(await reload(s, daemon), 'failed');
    assert.match(daemon.output, /knocktail\.conf:\d+: .*\n(?:.*\n)*reload failed: still running with the previous config/);
    knock(s, '192.0.2.30', 7000);
    await waitFor('the old door to open', () => linesOf(s.commands).includes('start door 192.0.2.30'), () => daemon.output);
    assert.ok(daemon.running);
    assert.equal((await daemon.stop()).code, 0);
  });

  it('keeps knocks in progress on unchanged doors and the follower untouched', async () => {
    const keep = recordingDoor('keep', '7000,8000,9000');
    const s = scratch(`${keep}\n${recordingDoor('other', '1111,2222')}`);
    const daemon = await startDaemon(s);
    knock(s, '192.0.2.31', 7000, 8000);
    await waitFor('two knocks', async () => (await statusOf(s)).counters.stages === 2);
    const before = (await statusOf(s)).inputs[0]!;

    writeConfig(s, `${keep}\n${recordingDoor('other', '3333,4444')}\n${recordingDoor('added', '5555')}`);
    assert.equal(await reload(s, daemon), 'done');
    const after = await statusOf(s);
    assert.deepEqual(after.attempts.oldest && [after.attempts.oldest.door, after.attempts.oldest.ip, after.attempts.oldest.stage], ['keep', '192.0.2.31', 2]);
    const input = after.inputs[0]!;
    assert.equal(linesRead(input), linesRead(before), 'the same input: its line count goes on');
    assert.equal(input.offset, before.offset);

    knock(s, '192.0.2.31', 9000);
    knock(s, '192.0.2.32', 5555);
    await waitFor('both doors', () => linesOf(s.commands).length === 2, () => daemon.output);
    assert.deepEqual(linesOf(s.commands).sort(), ['start added 192.0.2.32', 'start keep 192.0.2.31']);
    assert.equal(linesRead((await statusOf(s)).inputs[0]!), 4, 'every line read once');
    await daemon.stop();
  });

  it('starts and stops inputs for added and removed FirewallLog entries', async () => {
    const door = recordingDoor('door', '7000');
    const s = scratch(door);
    const second = join(s.dir, 'fw2.log');
    writeFileSync(second, '');
    const daemon = await startDaemon(s);

    writeConfig(s, door, `  FirewallLog = ${s.fwLog}, ${second}`);
    assert.equal(await reload(s, daemon), 'done');
    assert.deepEqual((await statusOf(s)).inputs.map((input) => input.id), [s.fwLog, second]);
    appendFileSync(second, knockLine('192.0.2.33', 7000));
    await waitFor('a knock in the added log', () => linesOf(s.commands).includes('start door 192.0.2.33'), () => daemon.output);

    writeConfig(s, door, `  FirewallLog = ${second}`);
    assert.equal(await reload(s, daemon), 'done');
    assert.deepEqual((await statusOf(s)).inputs.map((input) => input.id), [second]);
    const readUpTo = statSync(s.fwLog).size;
    knock(s, '192.0.2.34', 7000);
    appendFileSync(second, knockLine('192.0.2.35', 7000));
    await waitFor('a knock in the remaining log', () => linesOf(s.commands).includes('start door 192.0.2.35'), () => daemon.output);
    // Stopped, the daemon has finished every command it started (nothing is reported left running).
    assert.equal((await daemon.stop()).code, 0);
    assert.doesNotMatch(daemon.output, /still running/);
    assert.ok(!linesOf(s.commands).includes('start door 192.0.2.34'), 'the removed log is not read');
    // Its position was saved when it was stopped, before the knock was written, and never moved on.
    const cursor = JSON.parse(readFileSync(join(s.stateDir, 'cursors', cursorFileName(s.fwLog)), 'utf8')) as { files: Array<{ offset: number }> };
    assert.deepEqual(cursor.files.map((file) => file.offset), [readUpTo]);
    assert.match(readFileSync(s.logFile, 'utf8'), new RegExp(`stopped reading ${s.fwLog.replaceAll('.', '\\.')}`));
  });

  it('keeps running on its other inputs when a new input fails to start, says so, and starts it at a later reload', async () => {
    const door = recordingDoor('door', '7000');
    const s = scratch(door);
    // Without journalctl on its PATH, the journal input cannot start (its commands run through /bin/sh -c).
    const noJournalctl = tempDir();
    const daemon = new DaemonProcess(['-c', s.config], { env: { ...process.env, PATH: noJournalctl } });
    await waitUntilRunning(s, daemon);
    writeConfig(s, door, `  FirewallLog = ${s.fwLog}, journal`);
    assert.equal(await reload(s, daemon), 'done');
    assert.match(daemon.output, /error: journal: cannot start: .*; fix it and reload/);
    assert.deepEqual((await statusOf(s)).inputs.map((input) => input.id), [s.fwLog], 'the log file is still read');
    knock(s, '192.0.2.39', 7000);
    await waitFor('the door to open', () => linesOf(s.commands).includes('start door 192.0.2.39'), () => daemon.output);
    // Fixed: journalctl is found (a stand-in that waits, as journalctl -f does) and a reload starts the input.
    writeFileSync(join(noJournalctl, 'journalctl'), `#!/bin/sh\nexec ${which('sleep')} 300\n`, { mode: 0o755 });
    assert.equal(await reload(s, daemon), 'done');
    assert.deepEqual((await statusOf(s)).inputs.map((input) => input.id).sort(), [s.fwLog, 'journal'].sort());
    assert.equal((await daemon.stop()).code, 0);
  });

  it('applies a changed LogFormat from where reading was', async () => {
    const door = recordingDoor('door', '7000');
    const s = scratch(door);
    const daemon = await startDaemon(s);
    knock(s, '192.0.2.36', 7000);
    await waitFor('the first knock', () => linesOf(s.commands).length === 1, () => daemon.output);

    writeConfig(s, `${secretFormat}\n${door}`, '  LogFormat = secret');
    assert.equal(await reload(s, daemon), 'done');
    appendFileSync(s.fwLog, knockLine('192.0.2.37', 7000) + knockLine('192.0.2.38', 7000, { prefix: 'SECRET' }));
    await waitFor('the knock in the new format', () => linesOf(s.commands).includes('start door 192.0.2.38'), () => daemon.output);
    await daemon.stop();
    assert.deepEqual(linesOf(s.commands), ['start door 192.0.2.36', 'start door 192.0.2.38'], 'old-format line ignored, nothing read twice');
  });

  it('re-opens its log file (logrotate) and says which options wait for a restart', async () => {
    const door = recordingDoor('door', '7000');
    const s = scratch(door);
    const daemon = await startDaemon(s);
    renameSync(s.logFile, `${s.logFile}.1`);
    writeConfig(s, door, `  StateDir = ${join(s.dir, 'elsewhere')}\n  MaxSources = 5`);
    assert.equal(await reload(s, daemon), 'done');
    assert.equal((await statusOf(s)).stateDir, s.stateDir);
    await daemon.stop();
    assert.match(readFileSync(`${s.logFile}.1`, 'utf8'), /re-reading config file/);
    const log = readFileSync(s.logFile, 'utf8');
    assert.match(log, /knocktail\.conf:\d+: StateDir changed; knocktail keeps ".*\/state" until it is restarted/);
    assert.match(log, /knocktail\.conf:\d+: MaxSources changed; knocktail keeps 100000 until it is restarted/);
    assert.match(log, /config reloaded, listening on/);
    assert.match(log, /shutting down/);
  });
});

/** Lines an input's decoder has read. */
function linesRead(input: InputStatus): number {
  return (input.decoder as { lines: number }).lines;
}
