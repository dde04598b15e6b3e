/**
 * A daemon that never leaves a door open: the pending stop command is in the state directory before the
 * start command runs, so `kill -9` while a door is open loses nothing. Restarted before the stop time the
 * stop runs at its time, restarted after it the stop runs at once and says how late; either way exactly
 * once, and the knock that opened the door does not open it again. A damaged state file is reported and
 * does not keep the daemon from starting.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DAMAGED_SUFFIX, STOPS_FILE } from '../../src/actions/file-stop-store.js';
import { CONTROL_SOCKET } from '../../src/daemon/control.js';
import { UNMARKED_FILE } from '../../src/daemon/state-dir.js';
import { directoryLockUnavailable, isRoot, lockDirectory, runCli, tempDir } from '../helpers.js';
import { DaemonProcess, knock, linesOf, recordingDoor, scratch, startDaemon, statusOf, waitFor, writeConfig } from '../daemon/harness.js';

/** Kills the daemon with SIGKILL once its door for `ip` is open with its final stop time recorded. */
async function killWhileOpen(daemon: DaemonProcess, s: ReturnType<typeof scratch>, ip: string): Promise<number> {
  let closesAt = 0;
  await waitFor(
    'the door to be open with its stop time known',
    async () => {
      const status = await statusOf(s);
      const open = status.open.find((door) => door.ip === ip);
      // While the start command runs the recorded time is provisional (start + CommandLimit + Cmd_Timeout).
      if (open === undefined || status.running.length > 0) return false;
      closesAt = open.closesAt;
      return true;
    },
    () => daemon.output,
  );
  const { signal } = await daemon.stop('SIGKILL');
  assert.equal(signal, 'SIGKILL');
  return closesAt;
}

describe('daemon: kill -9 while a door is open', () => {
  it('restarted before the stop time: the stop runs at its time, exactly once, and the knock is not replayed', async () => {
    // The stop command also notes when it ran, by the clock the daemon keeps its due times in: first, so the note
    // is whole once the stop's line is in CMDS (the other way round, the test could read it half-written).
    const s = scratch('[door]\n  sequence = 7000\n  cmd_timeout = 8\n  start_command = echo "start door %IP%" >> CMDS\n  stop_command = date +%s%3N > CMDS.ran; echo "stop door %IP%" >> CMDS\n');
    const first = await startDaemon(s);
    knock(s, '192.0.2.10', 7000);
    const closesAt = await killWhileOpen(first, s, '192.0.2.10');
    assert.deepEqual(linesOf(s.commands), ['start door 192.0.2.10']);

    // Restarted well within Cmd_Timeout: the stop is still pending (an overdue one would have run at start).
    const second = await startDaemon(s);
    const restored = await statusOf(s);
    assert.deepEqual(
      restored.open.map((door) => [door.door, door.ip, door.closesAt]),
      [['door', '192.0.2.10', closesAt]],
      'the pending stop was re-armed for its recorded time',
    );
    await waitFor('the stop command', () => linesOf(s.commands).length === 2, () => second.output);
    assert.ok(Number(readFileSync(`${s.commands}.ran`, 'utf8')) >= closesAt, 'the stop ran at its time, not before');
    assert.equal((await second.stop()).code, 0);

    // A third run finds nothing left to do: the stop was recorded as done.
    const third = await startDaemon(s);
    assert.deepEqual((await statusOf(s)).open, []);
    await third.stop();
    assert.deepEqual(linesOf(s.commands), ['start door 192.0.2.10', 'stop door 192.0.2.10']);
    assert.match(readFileSync(s.logFile, 'utf8'), /pending stop commands from the last run: 0 overdue \(running now\), 1 re-armed/);
  });

  it('restarted after the stop time: the stop runs at once, logged as late with how late, exactly once', async () => {
    const s = scratch(recordingDoor('door', '7000', '  cmd_timeout = 1\n'));
    const first = await startDaemon(s);
    knock(s, '192.0.2.11', 7000);
    const closesAt = await killWhileOpen(first, s, '192.0.2.11');
    await waitFor('the stop time to pass by two seconds', () => Date.now() > closesAt + 2000);

    const second = await startDaemon(s);
    await waitFor('the late stop command', () => linesOf(s.commands).length === 2, () => second.output);
    await second.stop();
    const third = await startDaemon(s);
    await third.stop();
    assert.deepEqual(linesOf(s.commands), ['start door 192.0.2.11', 'stop door 192.0.2.11']);
    const log = readFileSync(s.logFile, 'utf8');
    assert.match(log, /pending stop commands from the last run: 1 overdue \(running now\), 0 re-armed/);
    const late = /192\.0\.2\.11: door: command timeout \(late by (\d+) s\)/.exec(log);
    assert.ok(late, log);
    assert.ok(Number(late[1]) >= 2, `late by ${late[1]} s`);
  });
});

describe('daemon: the state directory', () => {
  it('is 0700 with 0600 files and socket', async () => {
    const s = scratch(recordingDoor('door', '7000'));
    const daemon = await startDaemon(s);
    knock(s, '192.0.2.12', 7000);
    await waitFor('the start command', () => linesOf(s.commands).length === 1, () => daemon.output);
    const mode = (path: string) => statSync(path).mode & 0o777;
    assert.equal(mode(s.stateDir), 0o700);
    assert.equal(mode(join(s.stateDir, 'cursors')), 0o700);
    assert.equal(mode(join(s.stateDir, STOPS_FILE)), 0o600);
    assert.equal(mode(join(s.stateDir, CONTROL_SOCKET)), 0o600);
    assert.ok(statSync(join(s.stateDir, CONTROL_SOCKET)).isSocket());
    await daemon.stop();
    assert.equal(existsSync(join(s.stateDir, CONTROL_SOCKET)), false, 'the socket is removed at exit');
  });

  it('keeps what it can read from a damaged stops file, says what it dropped, and starts', async () => {
    const s = scratch(recordingDoor('door', '7000'));
    mkdirSync(s.stateDir, { mode: 0o700 });
    const stop = (id: string, ip: string, due: number) =>
      JSON.stringify({ save: { id, door: 'door', section: 1, ip, command: `echo "stop door ${ip}" >> ${s.commands}`, env: {}, due, openedAt: due - 10_000, limitMs: 60_000 } });
    const file = join(s.stateDir, STOPS_FILE);
    const damaged = [
      stop('a', '192.0.2.20', Date.now() - 1000),
      '{"save": {"id": "b", "door": "door", "ip": 7}}',
      'garbage \u0000\u0001',
      stop('c', '192.0.2.21', Date.now() + 600_000),
      stop('d', '192.0.2.22', Date.now()).slice(0, 60),
    ].join('\n');
    writeFileSync(file, damaged, { mode: 0o600 });

    const daemon = await startDaemon(s);
    await waitFor('the overdue stop kept from the damaged file', () => linesOf(s.commands).length === 1, () => daemon.output);
    assert.deepEqual(linesOf(s.commands), ['stop door 192.0.2.20']);
    assert.deepEqual((await statusOf(s)).open.map((door) => door.ip), ['192.0.2.21'], 'the future stop is re-armed');
    await daemon.stop();

    const output = daemon.output;
    assert.match(output, new RegExp(`${STOPS_FILE}:2: damaged record dropped \\(bad ip\\)`));
    assert.match(output, new RegExp(`${STOPS_FILE}:3: damaged record dropped \\(not JSON\\)`));
    assert.match(output, new RegExp(`${STOPS_FILE}:5: incomplete last record dropped`));
    assert.match(output, /3 damaged record\(s\) dropped, 2 pending stop\(s\) kept/);
    assert.equal(readFileSync(`${file}${DAMAGED_SUFFIX}`, 'utf8'), damaged, 'the damaged file is kept for inspection');
    assert.match(readFileSync(s.logFile, 'utf8'), /damaged record dropped/, 'reported in the log too');
    const rewritten = linesOf(file).map((line) => JSON.parse(line));
    assert.ok(rewritten.every((record) => 'save' in record || 'delete' in record), 'the journal holds only good records now');
  });

  it('refuses a state directory other users can write to, naming the config line', async () => {
    const s = scratch(recordingDoor('door', '7000'));
    mkdirSync(s.stateDir);
    chmodSync(s.stateDir, 0o777);
    const result = await runCli(['-c', s.config]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /knocktail\.conf:3: StateDir .* is writable by other users \(mode 0777\)[^]*fix: chmod 700/);
    assert.equal((statSync(s.stateDir).mode & 0o777), 0o777, 'never chmod-ed by knocktail');
  });

  it('refuses a StateDir that is not a directory, naming the config line', async () => {
    const s = scratch(recordingDoor('door', '7000'));
    writeFileSync(s.stateDir, 'a file, not a directory\n');
    const result = await runCli(['-c', s.config]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /knocktail\.conf:3: StateDir .*state is not a directory\n {2}fix: name a directory of knocktail's own/);
    assert.equal(readFileSync(s.stateDir, 'utf8'), 'a file, not a directory\n', 'left as it was');
  });

  it('refuses a StateDir that belongs to another user, naming the fix', async () => {
    const s = scratch(recordingDoor('door', '7000'));
    // As root, a directory given to nobody; as another user, a directory root owns.
    const foreign = isRoot ? s.stateDir : '/usr';
    if (isRoot) {
      mkdirSync(s.stateDir, { mode: 0o700 });
      chownSync(s.stateDir, 65534, 65534);
    } else {
      writeConfig(s, recordingDoor('door', '7000'), `  StateDir = ${foreign}`);
    }
    const uid = process.getuid!();
    const result = await runCli(['-c', s.config]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`StateDir ${foreign} belongs to uid ${statSync(foreign).uid}, not to uid ${uid} that knocktail runs as; .*\\n {2}fix: chown ${uid} ${foreign}, or choose another StateDir`));
    assert.equal(statSync(foreign).uid, isRoot ? 65534 : 0, 'never chown-ed by knocktail');
  });

  it('refuses a StateDir too long for its control socket, instead of a socket somewhere else', async () => {
    const s = scratch(recordingDoor('door', '7000'), `  StateDir = state/${'x'.repeat(100)}`);
    const result = await runCli(['-c', s.config]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /the control socket path .*control\.sock is longer than 107 bytes, the limit of Unix sockets: choose a shorter StateDir/);
  });

  it('allows one daemon per state directory', async () => {
    const s = scratch(recordingDoor('door', '7000'));
    const first = await startDaemon(s);
    const second = await runCli(['-c', s.config]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`another knocktail daemon \\(pid ${first.pid}\\) is running with StateDir`));
    assert.ok(first.running);
    await first.stop();
  });

  it('starts after a crash left its socket behind', async () => {
    const s = scratch(recordingDoor('door', '7000'));
    const first = await startDaemon(s);
    await first.stop('SIGKILL');
    assert.ok(existsSync(join(s.stateDir, CONTROL_SOCKET)), 'the dead daemon left its socket');
    const second = await startDaemon(s);
    assert.equal((await second.stop()).code, 0);
  });
});

describe('daemon: a one-time sequences file that cannot be rewritten', () => {
  it('kill -9 and restart: the used sequence stays closed; restarted once the file is writable, the mark is written', { skip: directoryLockUnavailable }, async () => {
    const sequencesDir = join(tempDir('knocktail-one-time-'), 'locked');
    mkdirSync(sequencesDir);
    const sequences = join(sequencesDir, 'sequences');
    writeFileSync(sequences, ' 7001,7002\n 7101\n');
    const s = scratch(`[ot]\n  one_time_sequences = ${sequences}\n  seq_timeout = 30\n  start_command = echo "start ot %IP%" >> CMDS\n`);
    const unlock = lockDirectory(sequencesDir) as () => void;
    try {
      const first = await startDaemon(s);
      knock(s, '192.0.2.70', 7001, 7002);
      await waitFor('the open, the door disabled and the unwritten mark recorded', () => linesOf(s.commands).length === 1 && existsSync(join(s.stateDir, UNMARKED_FILE)), () => first.output);
      await first.stop('SIGKILL');

      const second = await startDaemon(s);
      knock(s, '192.0.2.71', 7001, 7002);
      await waitFor('the restarted daemon to read the replayed sequence', async () => (await statusOf(s)).counters.linesRead >= 2, () => second.output);
      assert.deepEqual(linesOf(s.commands), ['start ot 192.0.2.70'], 'the used sequence does not open again after the restart');
      assert.match(readFileSync(s.logFile, 'utf8'), /cannot mark the used sequence 7001:tcp,7002:tcp/);
      await second.stop();
    } finally {
      unlock();
    }
    assert.equal(readFileSync(sequences, 'utf8'), ' 7001,7002\n 7101\n');
    const third = await startDaemon(s);
    assert.equal(readFileSync(sequences, 'utf8'), '# 7001,7002\n 7101\n', 'the pending mark is written at start-up');
    knock(s, '192.0.2.72', 7101);
    await waitFor('the next sequence to open', () => linesOf(s.commands).length === 2, () => third.output);
    assert.deepEqual(linesOf(s.commands), ['start ot 192.0.2.70', 'start ot 192.0.2.72']);
    await third.stop();
  });
});
