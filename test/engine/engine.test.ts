/**
 * The engine's time rules (docs/design.md, "Time"), on the engine itself: live with a hand-driven clock that can
 * step as the wall clock does, and in event time as replay drives it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VirtualClock } from '../../src/actions/clock.js';
import type { CommandResult, CommandRunner } from '../../src/actions/runner.js';
import { MemoryStopStore } from '../../src/actions/stop-store.js';
import { parseConfigText } from '../../src/config/parse.js';
import { Engine, type EngineTime } from '../../src/engine/engine.js';
import type { KnockEvent } from '../../src/engine/events.js';
import type { KnockHit } from '../../src/hit.js';
import { MemoryUsedKnocks } from '../../src/knocks/used.js';
import { MemoryOneTimeFiles } from '../../src/matcher/one-time-files.js';
import { ManualClock } from './manual-clock.js';

const T = Date.parse('2026-11-21T05:00:00Z');
const DAY = 86_400_000;

const DOORS = `[options]
  MaxKnockAge = 60
[door]
  sequence = 7000,8000,9000
  seq_timeout = 5
  start_command = start %IP%
  cmd_timeout = 600
  stop_command = stop %IP%
`;

/** A runner that records the order in which commands start, against `order`. */
class RecordingRunner implements CommandRunner {
  constructor(private readonly order: string[]) {}
  run(command: string): Promise<CommandResult> {
    this.order.push(`run ${command}`);
    return Promise.resolve({ status: 0, signal: null, output: '', durationMs: 0, timedOut: false, error: null });
  }
}

interface Rig {
  engine: Engine;
  events: KnockEvent[];
  /** Commands run and positions saved, in order. */
  order: string[];
  /** `type door-or-input ip` of the events of these types. */
  trace(...types: KnockEvent['type'][]): string[];
}

function rig(time: EngineTime, config = DOORS): Rig {
  const events: KnockEvent[] = [];
  const order: string[] = [];
  const engine = new Engine(parseConfigText(config, '/etc/knocktail.conf'), {
    time,
    runner: new RecordingRunner(order),
    store: new MemoryStopStore(),
    oneTimeFiles: new MemoryOneTimeFiles(),
    usedKnocks: new MemoryUsedKnocks(),
    isLocal: null,
    sinks: [(event) => events.push(event)],
    onWarning: (message) => assert.fail(message),
    beforeCommands: (input) => order.push(`persist ${input}`),
  });
  const trace = (...types: KnockEvent['type'][]): string[] =>
    events
      .filter((event) => types.includes(event.type))
      .map((event) => {
        const door = 'door' in event ? (typeof event.door === 'string' ? event.door : event.door.name) : 'input' in event ? event.input : '';
        return `${event.type} ${door} ${'ip' in event ? event.ip : ''}`.trim();
      });
  return { engine, events, order, trace };
}

function hit(src: string, port: number, time: number, input = 'kern.log'): KnockHit {
  return { time, src, dst: '192.0.2.1', proto: 'tcp', dport: port, sport: 40000, flags: 2, input, iface: null };
}

/** Lets the microtasks of started commands run. */
const settle = (r: Rig): Promise<void> => r.engine.settled();

describe('engine, live: stale and future knocks never count', () => {
  it('a knock stamped more than MaxKnockAge ago advances nothing; younger ones still do (a backlog after a restart)', async () => {
    const clock = new ManualClock(T);
    const r = rig({ kind: 'live', clock, caughtUp: () => true });
    for (const port of [7000, 8000, 9000]) r.engine.hit(hit('192.0.2.7', port, T - 61_000));
    for (const port of [7000, 8000, 9000]) r.engine.hit(hit('192.0.2.8', port, T - 59_000));
    await settle(r);
    assert.deepEqual(r.trace('open'), ['open door 192.0.2.8']);
    assert.deepEqual(r.trace('stale'), ['stale kern.log 192.0.2.7', 'stale kern.log 192.0.2.7', 'stale kern.log 192.0.2.7']);
    assert.deepEqual(r.engine.status().inputs.map((input) => [input.input, input.stale]), [['kern.log', 3]]);
  });

  it('a first knock stamped a day ahead is refused, so knocks stamped now cannot complete it', async () => {
    const clock = new ManualClock(T);
    const r = rig({ kind: 'live', clock, caughtUp: () => true });
    r.engine.hit(hit('192.0.2.7', 7000, T + DAY));
    r.engine.hit(hit('192.0.2.7', 8000, T));
    r.engine.hit(hit('192.0.2.7', 9000, T + 1));
    await settle(r);
    assert.deepEqual(r.trace('open', 'stage'), []);
    assert.deepEqual(r.trace('future'), ['future kern.log 192.0.2.7']);
  });

  it('05:00:00, a day earlier, 05:00:01 (seq_timeout 5): the old knock is refused and the door stays closed', async () => {
    const clock = new ManualClock(T + 1000);
    const r = rig({ kind: 'live', clock, caughtUp: () => true });
    r.engine.hit(hit('192.0.2.7', 7000, T));
    r.engine.hit(hit('192.0.2.7', 8000, T - DAY));
    r.engine.hit(hit('192.0.2.7', 9000, T + 1000));
    await settle(r);
    assert.deepEqual(r.trace('open'), []);
    assert.deepEqual(r.trace('stale'), ['stale kern.log 192.0.2.7']);
  });

  it('a knock stamped a little before the one read before it is counted at that later time, and reported', async () => {
    const clock = new ManualClock(T + 3000);
    const r = rig({ kind: 'live', clock, caughtUp: () => true });
    r.engine.hit(hit('192.0.2.7', 7000, T + 1000));
    r.engine.hit(hit('192.0.2.7', 8000, T + 500));
    r.engine.hit(hit('192.0.2.7', 9000, T + 1500));
    await settle(r);
    assert.deepEqual(r.trace('open'), ['open door 192.0.2.7']);
    const stage2 = r.events.find((event) => event.type === 'stage' && event.stage === 2);
    assert.equal(stage2?.time, T + 1000, 'the stage is stamped with the time it was counted at');
    assert.deepEqual(r.trace('reordered'), ['reordered kern.log 192.0.2.7']);
    assert.deepEqual(r.engine.status().inputs.map((input) => [input.reordered, input.largestStepBackMs]), [[1, 500]]);
  });

  it('keeps each input\'s order apart: one input behind another is not reordered', async () => {
    const clock = new ManualClock(T + 3000);
    const r = rig({ kind: 'live', clock, caughtUp: () => true });
    r.engine.hit(hit('192.0.2.7', 7000, T + 2000, 'a.log'));
    r.engine.hit(hit('192.0.2.8', 7000, T + 1000, 'b.log'));
    assert.deepEqual(r.trace('reordered'), []);
  });
});

describe('engine, live: the position is saved before an open runs commands', () => {
  it('calls beforeCommands with the input of the completing hit, before the start command, once per open', async () => {
    const clock = new ManualClock(T);
    const r = rig({ kind: 'live', clock, caughtUp: () => true });
    r.engine.hit(hit('192.0.2.7', 7000, T, 'a.log'));
    r.engine.hit(hit('192.0.2.7', 8000, T, 'b.log'));
    r.engine.hit(hit('192.0.2.7', 9000, T, 'c.log'));
    await settle(r);
    assert.deepEqual(r.order, ['persist c.log', 'run start 192.0.2.7']);
  });
});

describe('engine, live: expiry by the clock', () => {
  it('a sequence timeout fires by the clock, once no hit came for a while, with the exact time of the deadline', () => {
    const clock = new ManualClock(T);
    const r = rig({ kind: 'live', clock, caughtUp: () => true });
    r.engine.start();
    r.engine.hit(hit('192.0.2.7', 7000, T));
    clock.advance(4000);
    assert.deepEqual(r.trace('timeout'), []);
    clock.advance(4000);
    const timeout = r.events.find((event) => event.type === 'timeout');
    assert.equal(timeout?.time, T + 5000);
    r.engine.stop();
  });

  it('holds expiry while an input still reads its backlog', () => {
    const clock = new ManualClock(T);
    let caughtUp = false;
    const r = rig({ kind: 'live', clock, caughtUp: () => caughtUp });
    r.engine.start();
    r.engine.hit(hit('192.0.2.7', 7000, T));
    clock.advance(20_000);
    assert.deepEqual(r.trace('timeout'), [], 'a backlog may still hold the next step');
    caughtUp = true;
    clock.advance(5000);
    assert.deepEqual(r.trace('timeout'), ['timeout door 192.0.2.7']);
    r.engine.stop();
  });
});

describe('engine, live: wall-clock steps', () => {
  it('a forward step runs a pending stop at the next tick, not when its timer would have fired, and says how late', async () => {
    const clock = new ManualClock(T);
    const r = rig({ kind: 'live', clock, caughtUp: () => true });
    r.engine.start();
    for (const port of [7000, 8000, 9000]) r.engine.hit(hit('192.0.2.7', port, T));
    await settle(r);
    clock.step(700_000);
    clock.advance(1000);
    await settle(r);
    const stop = r.events.find((event) => event.type === 'stop');
    assert.ok(stop?.type === 'stop');
    // The stop was due 600 s after the start finished (T); the clock stepped to T + 700 s, and the tick came 1 s later.
    assert.equal(stop.lateMs, 101_000);
    assert.deepEqual(r.trace('clock-step').length, 1);
    assert.deepEqual(r.order, ['persist kern.log', 'run start 192.0.2.7', 'run stop 192.0.2.7']);
    r.engine.stop();
  });

  it('a backward step abandons knocks in progress, so knocks after it can never complete them, and runs no start', async () => {
    const clock = new ManualClock(T);
    const r = rig({ kind: 'live', clock, caughtUp: () => true });
    r.engine.start();
    r.engine.hit(hit('192.0.2.7', 7000, T));
    r.engine.hit(hit('192.0.2.7', 8000, T + 100));
    clock.step(-3_600_000);
    // The kernel stamps with the stepped clock too: the last step arrives stamped an hour "before" the others.
    r.engine.hit(hit('192.0.2.7', 9000, T - 3_600_000 + 200));
    await settle(r);
    assert.deepEqual(r.trace('open'), []);
    const step = r.events.find((event) => event.type === 'clock-step');
    assert.ok(step?.type === 'clock-step' && step.stepMs === -3_600_000 && step.abandoned === 1);
    assert.deepEqual(r.order, []);
    // After the step, a whole new sequence opens as usual, stamped by the new clock.
    for (const port of [7000, 8000, 9000]) r.engine.hit(hit('192.0.2.8', port, T - 3_600_000 + 300));
    await settle(r);
    assert.deepEqual(r.trace('open'), ['open door 192.0.2.8']);
    r.engine.stop();
  });

  it('a backward step never delays a pending stop: its timer counts elapsed time', async () => {
    const clock = new ManualClock(T);
    const r = rig({ kind: 'live', clock, caughtUp: () => true });
    r.engine.start();
    for (const port of [7000, 8000, 9000]) r.engine.hit(hit('192.0.2.7', port, T));
    await settle(r);
    clock.step(-86_400_000);
    clock.advance(600_000);
    await settle(r);
    assert.deepEqual(r.order, ['persist kern.log', 'run start 192.0.2.7', 'run stop 192.0.2.7']);
    r.engine.stop();
  });
});

describe('engine, event time (replay)', () => {
  it('05:00:00, a day earlier, 05:00:01: the old knock is refused as the daemon would have, and events stay in time order', async () => {
    const r = rig({ kind: 'event', clock: new VirtualClock() });
    await r.engine.feed([hit('192.0.2.7', 7000, T), hit('192.0.2.7', 8000, T - DAY), hit('192.0.2.7', 9000, T + 1000)]);
    await r.engine.finish();
    assert.deepEqual(r.trace('open'), []);
    assert.deepEqual(r.trace('stale'), ['stale kern.log 192.0.2.7']);
    const times = r.events.map((event) => event.time);
    assert.deepEqual(times, [...times].sort((a, b) => a - b), 'events in time order');
  });

  it('a knock a little out of order is counted at the later time: a stop still lands Cmd_Timeout after its start', async () => {
    const r = rig({ kind: 'event', clock: new VirtualClock() });
    await r.engine.feed([hit('192.0.2.7', 7000, T + 1000), hit('192.0.2.7', 8000, T), hit('192.0.2.7', 9000, T + 2000)]);
    await r.engine.finish();
    assert.deepEqual(r.trace('open', 'start', 'stop'), ['open door 192.0.2.7', 'start door 192.0.2.7', 'stop door 192.0.2.7']);
    const start = r.events.find((event) => event.type === 'start')!;
    const stop = r.events.find((event) => event.type === 'stop')!;
    assert.equal(stop.time - start.time, 600_000);
    const times = r.events.map((event) => event.time);
    assert.deepEqual(times, [...times].sort((a, b) => a - b));
    assert.deepEqual(r.engine.status().inputs.map((input) => [input.reordered, input.largestStepBackMs]), [[1, 1000]]);
  });

  it('reports gaps of more than a day between an input\'s knocks', async () => {
    const r = rig({ kind: 'event', clock: new VirtualClock() });
    await r.engine.feed([hit('192.0.2.7', 7000, T), hit('192.0.2.7', 7000, T + 3 * DAY)]);
    await r.engine.finish();
    const [input] = r.engine.status().inputs;
    assert.equal(input?.longGaps, 1);
    assert.deepEqual(input?.firstGaps, [{ from: T, to: T + 3 * DAY }]);
  });

  it('a sequence timeout and a stop due before a hit happen before it, in time order', async () => {
    const r = rig({ kind: 'event', clock: new VirtualClock() });
    await r.engine.feed([...[7000, 8000, 9000].map((port) => hit('192.0.2.7', port, T)), hit('192.0.2.8', 7000, T + 1000), hit('192.0.2.9', 7000, T + 700_000)]);
    await r.engine.finish();
    assert.deepEqual(r.trace('open', 'start', 'timeout', 'stop'), [
      'open door 192.0.2.7',
      'start door 192.0.2.7',
      'timeout door 192.0.2.8',
      'stop door 192.0.2.7',
      'timeout door 192.0.2.9',
    ]);
  });
});
