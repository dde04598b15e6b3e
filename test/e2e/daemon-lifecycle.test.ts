/**
 * The daemon's life through the real command line: repeated knocks while a door is open (On_Reopen),
 * OnStart/OnStop hooks, SIGTERM (pending stops stay recorded, or run with CloseOnExit; a bounded wait
 * for running commands; a second signal stops at once), -d (pid file, detached, start-up errors in the
 * parent) and systemd readiness (Type=notify through systemd-notify).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { needs, runCli, which } from '../helpers.js';
import { DaemonProcess, knock, linesOf, recordedStops, recordingDoor, scratch, startDaemon, statusOf, waitFor, waitUntilRunning } from '../daemon/harness.js';

/** Kills a command's process group that a test left running on purpose (its shell wrote its pid to `file`). */
function killGroup(file: string): void {
  if (!existsSync(file)) return;
  try {
    process.kill(-Number(readFileSync(file, 'utf8').trim()), 'SIGKILL');
  } catch {
    // Already gone.
  }
}

describe('daemon: a repeated knock while the door is open', () => {
  it('extends the stop by default, re-runs the start with On_Reopen = rerun, and keeps knockd behaviour without a stop command', async () => {
    const s = scratch(
      recordingDoor('extend', '7000', '  cmd_timeout = 3\n') +
        recordingDoor('rerun', '7100', '  cmd_timeout = 1\n  on_reopen = rerun\n') +
        '[nostop]\n  sequence = 7200\n  start_command = echo "start nostop %IP%" >> CMDS\n',
    );
    const daemon = await startDaemon(s);
    knock(s, '192.0.2.40', 7000, 7100, 7200);
    let firstClose: number | undefined;
    await waitFor('the doors to open, the extend door with its stop pending', async () => {
      const status = await statusOf(s);
      firstClose = status.open.find((door) => door.door === 'extend')?.closesAt;
      return linesOf(s.commands).length === 3 && status.running.length === 0 && firstClose !== undefined;
    });
    knock(s, '192.0.2.40', 7000, 7100, 7200);
    await waitFor('the repeat knocks', async () => (await statusOf(s)).counters.opens === 6);
    const extended = (await statusOf(s)).open.find((door) => door.door === 'extend')!;
    assert.ok(extended.closesAt > firstClose!, 'the stop moved later');
    await waitFor('every stop', () => linesOf(s.commands).filter((line) => line.startsWith('stop')).length === 3, () => daemon.output);
    await daemon.stop();
    const commands = linesOf(s.commands);
    assert.deepEqual(commands.filter((line) => line.includes('extend')), ['start extend 192.0.2.40', 'stop extend 192.0.2.40']);
    assert.deepEqual(commands.filter((line) => line.includes('rerun')).sort(), ['start rerun 192.0.2.40', 'start rerun 192.0.2.40', 'stop rerun 192.0.2.40', 'stop rerun 192.0.2.40']);
    assert.deepEqual(commands.filter((line) => line.includes('nostop')), ['start nostop 192.0.2.40', 'start nostop 192.0.2.40']);
    assert.match(readFileSync(s.logFile, 'utf8'), /192\.0\.2\.40: extend: already open, stop command postponed to /);
  });
});

describe('daemon: start and stop', () => {
  it('runs OnStart before reading, OnStop at exit, and with CloseOnExit every pending stop first', async () => {
    const s = scratch(recordingDoor('door', '7000', '  cmd_timeout = 600\n'), '  OnStart = echo onstart >> CMDS\n  OnStop = echo onstop >> CMDS\n  CloseOnExit = yes');
    const daemon = await startDaemon(s);
    knock(s, '192.0.2.41', 7000);
    await waitFor('the start command', () => linesOf(s.commands).length === 2, () => daemon.output);
    assert.equal((await daemon.stop()).code, 0);
    assert.deepEqual(linesOf(s.commands), ['onstart', 'start door 192.0.2.41', 'stop door 192.0.2.41', 'onstop']);
    assert.deepEqual(recordedStops(s), [], 'nothing left pending');
  });

  it('keeps pending stops recorded over a clean stop (no CloseOnExit) and re-arms them at the next start', async () => {
    const s = scratch(recordingDoor('door', '7000', '  cmd_timeout = 600\n'));
    const first = await startDaemon(s);
    knock(s, '192.0.2.42', 7000);
    await waitFor('the start command', () => linesOf(s.commands).length === 1, () => first.output);
    assert.equal((await first.stop('SIGINT')).code, 0);
    const second = await startDaemon(s);
    assert.deepEqual((await statusOf(s)).open.map((door) => door.ip), ['192.0.2.42']);
    await second.stop();
    assert.deepEqual(linesOf(s.commands), ['start door 192.0.2.42']);
  });

  it('does not start when OnStart fails, and says where it is configured', async () => {
    const s = scratch(recordingDoor('door', '7000'), '  OnStart = echo cannot; exit 3');
    const result = await runCli(['-c', s.config]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /OnStart: command returned non-zero status code \(3\)/);
    assert.match(result.stderr, /knocktail\.conf:5: the OnStart command failed \(exit status 3\), so nothing was started/);
    assert.match(readFileSync(s.logFile, 'utf8'), /OnStart: command output: cannot/);
    assert.equal(existsSync(join(s.stateDir, 'control.sock')), false);
  });

  it('waits a bounded time for running commands at SIGTERM, then leaves them running and says so', { timeout: 60_000 }, async () => {
    const t = scratch(`[door]\n  sequence = 7000\n  start_command = echo $$ > CMDS.pid; sleep 30\n  stop_command = echo "stop door %IP%" >> CMDS\n`);
    const pidFile = `${t.commands}.pid`;
    const daemon = await startDaemon(t);
    try {
      knock(t, '192.0.2.43', 7000);
      await waitFor('the start command to run', () => existsSync(pidFile), () => daemon.output);
      const { code } = await daemon.stop();
      assert.equal(code, 0);
      assert.match(daemon.output, /door: start command for 192\.0\.2\.43 still running after 5 s, left running \(its stop command is recorded and runs at the next start\)/);
      assert.deepEqual(recordedStops(t).map((stop) => stop.command), ['echo "stop door 192.0.2.43" >> ' + t.commands], 'its stop is recorded');
    } finally {
      killGroup(pidFile);
    }
  });

  it('stops at once on a second SIGTERM (exit 1), pending stops staying recorded', { timeout: 60_000 }, async () => {
    const t = scratch(`[door]\n  sequence = 7000\n  start_command = echo $$ > CMDS.pid; sleep 30\n  stop_command = true\n`);
    const pidFile = `${t.commands}.pid`;
    const daemon = await startDaemon(t);
    try {
      knock(t, '192.0.2.44', 7000);
      await waitFor('the start command to run', () => existsSync(pidFile), () => daemon.output);
      daemon.signal('SIGTERM');
      await waitFor('the daemon to begin stopping', async () => (await statusOf(t).catch(() => null))?.state !== 'running');
      const { code } = await daemon.stop('SIGTERM');
      assert.equal(code, 1);
      assert.match(daemon.output, /second signal: stopping at once/);
      assert.deepEqual(recordedStops(t).map((stop) => stop.ip), ['192.0.2.44']);
    } finally {
      killGroup(pidFile);
    }
  });
});

describe('daemon: -4', () => {
  it('ignores IPv6 knocks (only IPv4 sources open doors); without -4 the same log opens for both', async () => {
    for (const [args, opened] of [[['-4'], ['start door 192.0.2.47']], [[], ['start door 2001:db8::47', 'start door 192.0.2.47']]] as const) {
      const s = scratch(recordingDoor('door', '7000,8000'));
      const daemon = await startDaemon(s, ...args);
      // The IPv6 knocks come first: once the IPv4 one has opened, they have been read too.
      knock(s, '2001:db8::47', 7000, 8000);
      knock(s, '192.0.2.47', 7000, 8000);
      await waitFor('the IPv4 knock to open', () => linesOf(s.commands).includes('start door 192.0.2.47'), () => daemon.output);
      assert.equal((await statusOf(s)).counters.linesRead, 4, 'every line read');
      assert.equal((await daemon.stop()).code, 0);
      assert.deepEqual(linesOf(s.commands), opened, `knocktail ${args.join(' ')}`);
    }
  });
});

describe('daemon: -d', () => {
  it('detaches, writes its pid file, and removes it when stopped by SIGTERM', async () => {
    const s = scratch(recordingDoor('door', '7000'));
    const pidFile = join(s.dir, 'knocktail.pid');
    const result = await runCli(['-c', s.config, '-d', '-p', pidFile]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout + result.stderr, '', 'nothing printed when it starts');
    const text = readFileSync(pidFile, 'utf8');
    assert.match(text, /^\d+\n$/);
    const pid = Number(text);
    try {
      const status = await waitUntilRunning(s);
      assert.equal(status.pid, pid, 'the pid file names the running daemon');
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      assert.equal(Number(fields[3]), pid, 'it leads its own session (setsid)');
      assert.equal(readlinkSync(`/proc/${pid}/cwd`), '/', 'in / like daemon(0,0)');
      knock(s, '192.0.2.45', 7000);
      await waitFor('a knock handled in the background', () => linesOf(s.commands).length === 1);
      process.kill(pid, 'SIGTERM');
      await waitFor('the daemon to exit', () => !existsSync(`/proc/${pid}`));
      assert.equal(existsSync(pidFile), false, 'pid file removed');
    } finally {
      if (existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
    }
  });

  it('prints start-up errors in the parent and exits 1', async () => {
    const s = scratch(recordingDoor('door', '7000'), '  OnStart = exit 4');
    const pidFile = join(s.dir, 'knocktail.pid');
    const failed = await runCli(['-c', s.config, '-d', '-p', pidFile]);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /knocktail\.conf:5: the OnStart command failed \(exit status 4\)/);
    assert.equal(existsSync(pidFile), false);

    const broken = scratch('[d]\n  sequence = 7000,0\n');
    const bad = await runCli(['-c', broken.config, '-d', '-p', pidFile]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /knocktail\.conf:\d+: /);
  });
});

describe('daemon: systemd', () => {
  it('reports readiness through systemd-notify when NOTIFY_SOCKET is set, and hides it from commands', { skip: needs({ tools: ['python3', 'systemd-notify'] }) }, async () => {
    const s = scratch(`[door]\n  sequence = 7000\n  start_command = echo "notify=\${NOTIFY_SOCKET:-none}" >> CMDS\n`);
    const socketPath = join(s.dir, 'notify.sock');
    // A stand-in for systemd's notify socket: prints each datagram, closes the barrier fds systemd-notify waits on.
    const receiver = spawn(which('python3')!, ['-c', NOTIFY_RECEIVER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    const messages: string[] = [];
    const lines = createInterface({ input: receiver.stdout! });
    lines.on('line', (line) => messages.push(line));
    let daemon: DaemonProcess | null = null;
    try {
      await waitFor('the notify socket', () => messages.includes('listening'));
      daemon = new DaemonProcess(['-c', s.config], { env: { ...process.env, NOTIFY_SOCKET: socketPath } });
      await waitFor('READY=1', () => messages.some((message) => message.includes('READY=1')), () => daemon!.output);
      assert.ok(messages.some((message) => message.includes(`STATUS=listening on ${s.fwLog}`)), messages.join('\n'));
      knock(s, '192.0.2.46', 7000);
      await waitFor('the start command', () => linesOf(s.commands).length === 1, () => daemon!.output);
      assert.deepEqual(linesOf(s.commands), ['notify=none']);
      assert.equal((await daemon.stop()).code, 0);
      assert.doesNotMatch(daemon.output, /cannot tell systemd/);
    } finally {
      if (daemon?.running) await daemon.stop('SIGKILL');
      receiver.kill();
    }
  });
});

const NOTIFY_RECEIVER = `
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    msg, ancdata, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(64))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    print(msg.decode().replace("\\n", " "), flush=True)
`;
