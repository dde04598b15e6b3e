import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Clock, SystemClock, type Timer, VirtualClock } from '../../src/actions/clock.js';
import { DoorActions } from '../../src/actions/doors.js';
import { type CommandResult, type CommandRunner, ShellRunner } from '../../src/actions/runner.js';
import { MemoryStopStore, type PendingStop, type StopStore } from '../../src/actions/stop-store.js';
import { createSecretKey } from 'node:crypto';
import type { DoorConfig } from '../../src/config/types.js';
import type { ActionEvent } from '../../src/actions/events.js';
import { doorConfig } from '../helpers.js';

function door(overrides: Partial<DoorConfig> = {}): DoorConfig {
  return doorConfig({ name: 'oc', sequence: [{ proto: 'tcp', port: 7000 }], startCommand: 'open %IP%', stopCommand: 'close %IP%', ...overrides });
}

/** A door opened by encrypted messages (docs/encrypted-knocks.md): its commands use the request. */
function encryptedDoor(): DoorConfig {
  return doorConfig({
    name: 'enc',
    startCommand: 'open %IP% port %PORT% for %DURATION% from %KNOCK_IP%',
    stopCommand: 'close %IP% port %PORT%',
    encrypted: {
      key: { path: '/etc/knocktail/enc.key', key: createSecretKey(Buffer.alloc(32)), size: 32, uid: 0, mode: 0o600 },
      span: [{ proto: 'tcp', first: 40000, last: 40255 }],
      allowedPorts: [{ first: 22, last: 22 }, { first: 443, last: 443 }],
      maxDuration: 3600,
      window: 60,
      trustKnockIp: true,
    },
  });
}

const ok: CommandResult = { status: 0, signal: null, output: '', durationMs: 0, timedOut: false, error: null };

/** Records commands; lets a test look at the store at the moment a command runs. */
class RecordingRunner implements CommandRunner {
  readonly commands: string[] = [];
  readonly storeAtRun: PendingStop[][] = [];
  constructor(private readonly store?: MemoryStopStore) {}
  async run(command: string): Promise<CommandResult> {
    this.commands.push(command);
    if (this.store) this.storeAtRun.push(this.store.load());
    return ok;
  }
}

function setup(doors: DoorConfig[], start = 1_000_000) {
  const clock = new VirtualClock(start);
  const store = new MemoryStopStore();
  const runner = new RecordingRunner(store);
  const events: ActionEvent[] = [];
  const actions = new DoorActions(doors, { clock, runner, store, emit: (e) => events.push(e), commandLimit: 60 });
  const advance = (ms: number) => clock.advanceTo(clock.now() + ms, () => actions.settled());
  return { clock, store, runner, events, actions, advance };
}

/** A runner whose start commands (`open …`) run until the test calls finishStart(); the others end at once. Records `begin CMD at TIME` and `end CMD`. */
function heldStartRunner(clock: Clock) {
  const order: string[] = [];
  let finish: () => void = () => undefined;
  const runner: CommandRunner = {
    run: (command) => {
      order.push(`begin ${command} at ${clock.now()}`);
      if (!command.startsWith('open')) return Promise.resolve(ok);
      return new Promise((resolve) => {
        finish = () => {
          order.push(`end ${command}`);
          resolve(ok);
        };
      });
    },
  };
  return { runner, order, finishStart: () => finish() };
}

const summary = (events: ActionEvent[]) => events.map((e) => (e.type === 'error' ? `error ${e.message}` : `${e.type} ${e.time} ${'command' in e ? e.command : ''}`.trim()));

describe('DoorActions', () => {
  it('runs the start command, then the stop command Cmd_Timeout later', async () => {
    const { actions, events, advance, runner } = setup([door()]);
    actions.open(door(), '10.66.0.2');
    await actions.settled();
    await advance(9_999);
    assert.deepEqual(runner.commands, ['open 10.66.0.2']);
    await advance(1);
    assert.deepEqual(runner.commands, ['open 10.66.0.2', 'close 10.66.0.2']);
    assert.deepEqual(summary(events), ['start 1000000 open 10.66.0.2', 'exit 1000000 open 10.66.0.2', 'stop 1010000 close 10.66.0.2', 'exit 1010000 close 10.66.0.2']);
  });

  it('records the pending stop durably before the start command runs', async () => {
    const d = door();
    const { actions, runner, store } = setup([d]);
    actions.open(d, '10.66.0.2');
    await actions.settled();
    assert.equal(runner.storeAtRun[0]!.length, 1);
    assert.equal(runner.storeAtRun[0]![0]!.command, 'close 10.66.0.2');
    assert.equal(store.load()[0]!.due, 1_010_000, 'final due time saved once the start finished');
  });

  it("picks commands by address family with knockd's fallback rules (case 22)", async () => {
    const v6a = door({ name: 'v6a', startCommand: 'start4 %IP%', startCommand6: 'start6 %IP%', stopCommand: null });
    const v6b = door({ name: 'v6b', startCommand: 'start4 %IP%', stopCommand: null });
    const v6c = door({ name: 'v6c', startCommand: 'start4 %IP%', startCommand6: '', stopCommand: null });
    const { actions, runner } = setup([v6a, v6b, v6c]);
    for (const d of [v6a, v6b, v6c]) actions.open(d, 'fe80::1');
    for (const d of [v6a, v6b, v6c]) actions.open(d, '10.88.0.2');
    await actions.settled();
    assert.deepEqual(runner.commands, ['start6 fe80::1', 'start4 fe80::1', 'start4 10.88.0.2', 'start4 10.88.0.2', 'start4 10.88.0.2']);
  });

  it('runs an empty stop_command_6 as nothing but still reports it; no start means nothing at all (case 23)', async () => {
    const s6 = door({ name: 's6', stopCommand6: '', cmdTimeout: 1 });
    const nostart = door({ name: 'nostart', startCommand: null, stopCommand: 'close' });
    const { actions, runner, events, advance } = setup([s6, nostart]);
    actions.open(s6, 'fd66::2');
    actions.open(nostart, 'fd66::2');
    await actions.settled();
    await advance(1000);
    assert.deepEqual(runner.commands, ['open fd66::2']);
    assert.deepEqual(summary(events), ['start 1000000 open fd66::2', 'exit 1000000 open fd66::2', 'stop 1001000']);
  });

  it('extends a pending stop on a repeat success instead of running the start again', async () => {
    const d = door();
    const { actions, runner, events, advance } = setup([d]);
    actions.open(d, '10.66.0.2');
    await actions.settled();
    await advance(6_000);
    actions.open(d, '10.66.0.2');
    await actions.settled();
    await advance(5_000);
    assert.deepEqual(runner.commands, ['open 10.66.0.2'], 'stop not due at the original time');
    await advance(5_000);
    assert.deepEqual(runner.commands, ['open 10.66.0.2', 'close 10.66.0.2']);
    const extend = events.find((e) => e.type === 'extend');
    assert.deepEqual(extend && { time: extend.time, until: extend.type === 'extend' && extend.until }, { time: 1_006_000, until: 1_016_000 });
    // Another source is a different knocker.
    actions.open(d, '10.66.0.3');
    await actions.settled();
    assert.equal(runner.commands.at(-1), 'open 10.66.0.3');
  });

  it('an encrypted message: its port and duration fill the commands, and the stop comes after its duration, not Cmd_Timeout', async () => {
    const d = encryptedDoor();
    const { actions, runner, store, advance } = setup([d]);
    actions.open(d, '203.0.113.9', { port: 22, duration: 120, knockIp: '198.51.100.1' });
    await actions.settled();
    assert.deepEqual(runner.commands, ['open 203.0.113.9 port 22 for 120 from 198.51.100.1']);
    assert.deepEqual(
      { port: store.load()[0]!.port, due: store.load()[0]!.due, env: store.load()[0]!.env },
      {
        port: 22,
        due: 1_120_000,
        env: { KNOCK_IP: '203.0.113.9', KNOCK_FAMILY: '4', KNOCK_DOOR: 'enc', KNOCK_TIMEOUT: '120', KNOCK_ACTION: 'stop', KNOCK_PORT: '22', KNOCK_DURATION: '120', KNOCK_SOURCE_IP: '198.51.100.1' },
      },
    );
    await advance(119_999);
    assert.equal(runner.commands.length, 1, 'Cmd_Timeout (10 s) plays no part');
    await advance(1);
    assert.deepEqual(runner.commands.at(-1), 'close 203.0.113.9 port 22');
  });

  it('an encrypted message: two ports of one address have stops of their own; a repeat for one port extends only its stop', async () => {
    const d = encryptedDoor();
    const { actions, runner, events, advance } = setup([d]);
    const from = '198.51.100.1';
    actions.open(d, '203.0.113.9', { port: 22, duration: 60, knockIp: from });
    actions.open(d, '203.0.113.9', { port: 443, duration: 30, knockIp: from });
    await actions.settled();
    await advance(20_000);
    actions.open(d, '203.0.113.9', { port: 443, duration: 100, knockIp: from });
    await actions.settled();
    assert.deepEqual(runner.commands, ['open 203.0.113.9 port 22 for 60 from 198.51.100.1', 'open 203.0.113.9 port 443 for 30 from 198.51.100.1']);
    assert.deepEqual(events.filter((e) => e.type === 'extend').map((e) => e.type === 'extend' && e.until), [1_120_000]);
    await advance(40_000);
    assert.deepEqual(runner.commands.slice(2), ['close 203.0.113.9 port 22']);
    await advance(60_000);
    assert.deepEqual(runner.commands.slice(2), ['close 203.0.113.9 port 22', 'close 203.0.113.9 port 443']);
  });

  it('an encrypted message: a stop restored after a restart is extended by a new message for the same port, not opened again', async () => {
    const d = encryptedDoor();
    const { clock, store, actions, runner, advance } = setup([d]);
    store.save({ id: 'kept', door: 'enc', section: 1, ip: '203.0.113.9', command: 'close kept', env: {}, due: clock.now() + 5_000, openedAt: 0, limitMs: 60_000, port: 22 });
    actions.restore();
    actions.open(d, '203.0.113.9', { port: 22, duration: 60, knockIp: '203.0.113.9' });
    actions.open(d, '203.0.113.9', { port: 443, duration: 60, knockIp: '203.0.113.9' });
    await actions.settled();
    assert.deepEqual(runner.commands, ['open 203.0.113.9 port 443 for 60 from 203.0.113.9']);
    await advance(60_000);
    assert.deepEqual(runner.commands.slice(1), ['close kept', 'close 203.0.113.9 port 443']);
  });

  it('an open on another firewall is another open: its own start, its own stop, recorded with its firewall', async () => {
    const d = door({ startCommand: 'open %IP% on %FIREWALL%', stopCommand: 'close %IP% on %FIREWALL%' });
    const { actions, runner, store, advance } = setup([d]);
    actions.open(d, '10.66.0.2', null, '192.0.2.1');
    await actions.settled();
    actions.open(d, '10.66.0.2', null, '192.0.2.2');
    actions.open(d, '10.66.0.2', null, '192.0.2.1');
    await actions.settled();
    assert.deepEqual(runner.commands, ['open 10.66.0.2 on 192.0.2.1', 'open 10.66.0.2 on 192.0.2.2'], 'the repeat on 192.0.2.1 extends its stop');
    assert.deepEqual(store.load().map((stop) => [stop.firewall, stop.env.KNOCK_FIREWALL]).sort(), [['192.0.2.1', '192.0.2.1'], ['192.0.2.2', '192.0.2.2']]);
    await advance(10_000);
    assert.deepEqual(runner.commands.slice(2).sort(), ['close 10.66.0.2 on 192.0.2.1', 'close 10.66.0.2 on 192.0.2.2']);
  });

  it('never runs a %FIREWALL% command for a knock that names no firewall', async () => {
    const d = door({ startCommand: 'open %IP% on %FIREWALL%' });
    const { actions, runner, events, store } = setup([d]);
    actions.open(d, '10.66.0.2');
    await actions.settled();
    assert.deepEqual(runner.commands, []);
    assert.deepEqual(store.load(), [], 'nor records its stop');
    assert.match(summary(events).join('\n'), /error oc: refusing to run a command with %FIREWALL% for a knock from a log that names no firewall/);
  });

  it("re-runs the start for every success with On_Reopen = rerun (knockd's behaviour)", async () => {
    const d = door({ onReopen: 'rerun' });
    const { actions, runner, advance } = setup([d]);
    actions.open(d, '10.66.0.2');
    await advance(1_000);
    actions.open(d, '10.66.0.2');
    await advance(20_000);
    assert.deepEqual(runner.commands, ['open 10.66.0.2', 'open 10.66.0.2', 'close 10.66.0.2', 'close 10.66.0.2']);
  });

  it('re-arms stored stops: overdue ones run at once and say how late, later ones at their time', async () => {
    const { clock, store, actions, events, runner, advance } = setup([]);
    const base = { ip: '10.66.0.2', env: {}, openedAt: 0, section: 1, limitMs: 60_000 };
    store.save({ ...base, id: 'a', door: 'gone', command: 'close-late', due: clock.now() - 5_000 });
    store.save({ ...base, id: 'b', door: 'oc', command: 'close-later', due: clock.now() + 5_000 });
    assert.equal(actions.restore().length, 2);
    await advance(0);
    assert.deepEqual(runner.commands, ['close-late']);
    const late = events.find((e) => e.type === 'stop');
    assert.equal(late?.type === 'stop' && late.lateMs, 5_000);
    await advance(5_000);
    assert.deepEqual(runner.commands, ['close-late', 'close-later']);
    assert.deepEqual(store.load(), []);
  });

  it('runs every pending stop on closeAll', async () => {
    const d = door();
    const { actions, runner, store } = setup([d]);
    actions.open(d, '10.66.0.2');
    actions.open(d, '10.66.0.3');
    await actions.settled();
    actions.closeAll();
    await actions.settled();
    assert.deepEqual(runner.commands.slice(2).sort(), ['close 10.66.0.2', 'close 10.66.0.3']);
    assert.deepEqual(store.load(), []);
    assert.deepEqual(actions.pending(), []);
  });

  it('closeAll while a start command still runs: its stop runs after it, never before (the rule would stay)', async () => {
    const d = door();
    const clock = new VirtualClock(1_000_000);
    const store = new MemoryStopStore();
    const { runner, order, finishStart } = heldStartRunner(clock);
    const actions = new DoorActions([d], { clock, runner, store, emit: () => undefined, commandLimit: 60 });
    actions.open(d, '192.0.2.7');
    await new Promise((r) => setImmediate(r));
    actions.closeAll();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['begin open 192.0.2.7 at 1000000'], 'no stop while the start runs');
    finishStart();
    await actions.settled();
    assert.deepEqual(order, ['begin open 192.0.2.7 at 1000000', 'end open 192.0.2.7', 'begin close 192.0.2.7 at 1000000']);
    assert.deepEqual(store.load(), []);
  });

  it('a repeat success while the start command still runs extends: no second start, the stop after the start, at the later of Cmd_Timeout and the extension', async () => {
    const d = door(); // Cmd_Timeout 10 s
    const reloaded = door({ cmdTimeout: 60 }); // the same door after a reload raised its Cmd_Timeout
    for (const { repeatWith, finishAt, stopAt } of [
      { repeatWith: d, finishAt: 1_005_000, stopAt: 1_015_000 }, // Cmd_Timeout after the (long) start wins
      { repeatWith: reloaded, finishAt: 1_001_000, stopAt: 1_060_500 }, // the extension asks for more
    ]) {
      const clock = new VirtualClock(1_000_000);
      const store = new MemoryStopStore();
      const { runner, order, finishStart } = heldStartRunner(clock);
      const commands = () => order.filter((line) => line.startsWith('begin'));
      const events: ActionEvent[] = [];
      const actions = new DoorActions([d], { clock, runner, store, emit: (e) => events.push(e), commandLimit: 60 });
      const settle = () => new Promise((r) => setImmediate(r));
      actions.open(d, '192.0.2.8');
      await settle();
      clock.passTo(1_000_500); // no timer is armed while the start runs
      actions.open(repeatWith, '192.0.2.8');
      await settle();
      clock.passTo(finishAt);
      finishStart();
      await settle();
      await clock.advanceTo(stopAt - 1, () => actions.settled());
      assert.deepEqual(commands(), ['begin open 192.0.2.8 at 1000000'], `one start, no stop before ${stopAt}`);
      await clock.advanceTo(stopAt, () => actions.settled());
      assert.deepEqual(commands(), ['begin open 192.0.2.8 at 1000000', `begin close 192.0.2.8 at ${stopAt}`]);
      const extend = events.find((e) => e.type === 'extend');
      assert.deepEqual(extend && extend.type === 'extend' && { time: extend.time, until: extend.until }, { time: 1_000_500, until: 1_000_500 + repeatWith.cmdTimeout * 1000 });
      assert.deepEqual(store.load(), [], 'nothing left pending');
    }
  });

  it('keeps two doors that share a name apart (knockd allows it): each runs its own start', async () => {
    const first = door({ name: 'web', at: { file: 'k.conf', line: 3 }, startCommand: 'open-a %IP%', stopCommand: 'close-a %IP%' });
    const second = door({ name: 'web', at: { file: 'k.conf', line: 9 }, startCommand: 'open-b %IP%', stopCommand: 'close-b %IP%' });
    const { actions, runner, advance } = setup([first, second]);
    actions.open(first, '192.0.2.7');
    actions.open(second, '192.0.2.7');
    await actions.settled();
    assert.deepEqual(runner.commands, ['open-a 192.0.2.7', 'open-b 192.0.2.7']);
    await advance(10_000);
    assert.deepEqual(runner.commands.slice(2).sort(), ['close-a 192.0.2.7', 'close-b 192.0.2.7']);
  });

  it("gives the stop command the door's Command_Limit, also after a restart", async () => {
    const limits: number[] = [];
    const clock = new VirtualClock(1_000_000);
    const store = new MemoryStopStore();
    const runner: CommandRunner = {
      run: (_command, _env, limitMs) => {
        limits.push(limitMs);
        return Promise.resolve(ok);
      },
    };
    const d = door({ commandLimit: 300 });
    const actions = new DoorActions([d], { clock, runner, store, emit: () => undefined, commandLimit: 60 });
    actions.open(d, '192.0.2.7');
    await actions.settled();
    assert.equal(store.load()[0]!.limitMs, 300_000);
    // A new process: same store, fresh clock and action layer.
    const later = new VirtualClock(clock.now());
    const restarted = new DoorActions([], { clock: later, runner, store, emit: () => undefined, commandLimit: 60 });
    restarted.restore();
    await later.advanceTo(later.now() + 10_000, () => restarted.settled());
    assert.deepEqual(limits, [300_000, 300_000]);
  });

  it('never runs a command for a non-canonical address', async () => {
    const d = door();
    const { actions, runner, events, store } = setup([d]);
    actions.open(d, '10.0.0.1;reboot');
    await actions.settled();
    assert.deepEqual(runner.commands, []);
    assert.deepEqual(store.load(), []);
    assert.match(summary(events)[0]!, /^error oc: refusing to run a command for non-canonical address/);
  });

  it('waits Cmd_Timeout after the start command finished, in real time (knockd case 20)', async () => {
    const d = door({ startCommand: 'sleep 0.4; exit 3', stopCommand: 'exit 300', cmdTimeout: 1 });
    const events: ActionEvent[] = [];
    const clock = new SystemClock();
    const actions = new DoorActions([d], { clock, runner: new ShellRunner(), store: new MemoryStopStore(), emit: (e) => events.push(e), commandLimit: 60 });
    actions.open(d, '10.88.0.2');
    while (!events.some((e) => e.type === 'exit' && e.action === 'stop')) await new Promise((r) => setTimeout(r, 50));
    const startExit = events.find((e) => e.type === 'exit' && e.action === 'start')!;
    const stop = events.find((e) => e.type === 'stop')!;
    const stopExit = events.find((e) => e.type === 'exit' && e.action === 'stop')!;
    assert.equal(startExit.type === 'exit' && startExit.result.status, 3);
    assert.equal(stopExit.type === 'exit' && stopExit.result.status, 44);
    assert.ok(stop.time - startExit.time >= 1000 - 5, `stop ${stop.time - startExit.time} ms after the start finished`);
  });

  it('runs a stop whose time the clock passed while its timer still waits (suspend, forward step), once', async () => {
    const d = door();
    const clock = new JumpingClock(1_000_000);
    const store = new MemoryStopStore();
    const runner = new RecordingRunner();
    const events: ActionEvent[] = [];
    const actions = new DoorActions([d], { clock, runner, store, emit: (e) => events.push(e), commandLimit: 60 });
    actions.open(d, '10.66.0.2');
    await actions.settled();
    assert.equal(actions.reconcile(), 0, 'nothing due yet');
    clock.jump(60_000);
    assert.equal(actions.reconcile(), 1);
    await actions.settled();
    assert.deepEqual(runner.commands, ['open 10.66.0.2', 'close 10.66.0.2']);
    const stop = events.find((e) => e.type === 'stop');
    assert.equal(stop?.type === 'stop' && stop.lateMs, 50_000);
    assert.equal(clock.pending(), 0, 'its timer was cancelled');
    assert.equal(actions.reconcile(), 0);
    assert.deepEqual(store.load(), []);
  });

  it('does not open when the stop cannot be recorded (fail closed)', async () => {
    const d = door();
    const store: StopStore = { load: () => [], save: () => { throw new Error('disk full'); }, delete: () => undefined };
    const runner = new RecordingRunner();
    const events: ActionEvent[] = [];
    const actions = new DoorActions([d], { clock: new VirtualClock(0), runner, store, emit: (e) => events.push(e), commandLimit: 60 });
    actions.open(d, '10.66.0.2');
    await actions.settled();
    assert.deepEqual(runner.commands, []);
    assert.deepEqual(summary(events), ['error oc: not opened for 10.66.0.2: its stop command could not be recorded (disk full)']);
    assert.deepEqual(actions.pending(), []);
  });

  it('still runs a stop whose new time cannot be recorded, and says so', async () => {
    const d = door();
    const memory = new MemoryStopStore();
    let saves = 0;
    const store: StopStore = {
      load: () => memory.load(),
      save: (stop) => {
        if (++saves > 1) throw new Error('I/O error');
        memory.save(stop);
      },
      delete: (id) => memory.delete(id),
    };
    const clock = new VirtualClock(1_000_000);
    const runner = new RecordingRunner();
    const events: ActionEvent[] = [];
    const actions = new DoorActions([d], { clock, runner, store, emit: (e) => events.push(e), commandLimit: 60 });
    actions.open(d, '10.66.0.2');
    await actions.settled();
    await clock.advanceTo(1_010_000, () => actions.settled());
    assert.deepEqual(runner.commands, ['open 10.66.0.2', 'close 10.66.0.2']);
    assert.match(summary(events).find((line) => line.startsWith('error'))!, /cannot record the new stop time for 10\.66\.0\.2 \(I\/O error\); after a restart the stop runs at its earlier recorded time/);
  });

  it('opens afresh after a stop whose record could not be deleted', async () => {
    const d = door({ cmdTimeout: 1 });
    const memory = new MemoryStopStore();
    const store: StopStore = { load: () => memory.load(), save: (stop) => memory.save(stop), delete: () => { throw new Error('read-only'); } };
    const clock = new VirtualClock(0);
    const runner = new RecordingRunner();
    const events: ActionEvent[] = [];
    const actions = new DoorActions([d], { clock, runner, store, emit: (e) => events.push(e), commandLimit: 60 });
    actions.open(d, '10.66.0.2');
    await actions.settled();
    await clock.advanceTo(1000, () => actions.settled());
    assert.ok(summary(events).some((line) => /^error command handling failed: read-only/.test(line)));
    actions.open(d, '10.66.0.2');
    await actions.settled();
    assert.deepEqual(runner.commands, ['open 10.66.0.2', 'close 10.66.0.2', 'open 10.66.0.2']);
  });

  it('extends a stop restored from the store instead of opening again', async () => {
    const d = door();
    const { clock, store, actions, runner } = setup([d]);
    store.save({ id: 'kept', door: 'oc', section: 1, ip: '10.66.0.2', command: 'close 10.66.0.2', env: {}, due: clock.now() + 3_000, openedAt: clock.now() - 7_000, limitMs: 60_000 });
    actions.restore();
    actions.open(d, '10.66.0.2');
    await actions.settled();
    assert.deepEqual(runner.commands, []);
    assert.deepEqual(actions.pending().map((stop) => [stop.id, stop.due]), [['kept', clock.now() + 10_000]]);
  });

  it('lists the commands running now', async () => {
    const d = door();
    let release: () => void = () => undefined;
    const runner: CommandRunner = { run: () => new Promise((resolve) => (release = () => resolve(ok))) };
    const clock = new VirtualClock(5_000);
    const actions = new DoorActions([d], { clock, runner, store: new MemoryStopStore(), emit: () => undefined, commandLimit: 60 });
    actions.open(d, '10.66.0.9');
    await Promise.resolve();
    assert.deepEqual(actions.running(), [{ door: 'oc', ip: '10.66.0.9', action: 'start', command: 'open 10.66.0.9', since: 5_000 }]);
    release();
    await actions.settled();
    assert.deepEqual(actions.running(), []);
  });
});

/** A clock whose time jumps without firing timers: what a suspend or a forward NTP step does to setTimeout. */
class JumpingClock implements Clock {
  private readonly timers = new Set<Timer>();
  constructor(private time: number) {}
  now(): number {
    return this.time;
  }
  monotonic(): number {
    return 0;
  }
  after(ms: number): Timer {
    return this.at(this.time + ms);
  }
  at(due: number): Timer {
    const timer = { due };
    this.timers.add(timer);
    return timer;
  }
  cancel(timer: Timer): void {
    this.timers.delete(timer);
  }
  jump(ms: number): void {
    this.time += ms;
  }
  pending(): number {
    return this.timers.size;
  }
}
