/**
 * Timers count monotonic time, which stands still during a suspend and ignores a forward clock step:
 * a stop due by the wall clock would wait on. The engine's clock check (every second of elapsed time)
 * catches it. The daemon runs in this process with a clock that can jump, as the wall clock does; the
 * exact lateness is pinned by the engine's hand-driven clock tests (test/engine/engine.test.ts).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { SystemClock } from '../../src/actions/clock.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { knock, linesOf, recordingDoor, scratch, statusOf, waitFor } from './harness.js';

/** The system clock, plus a jump: timers armed before it still count real time, as setTimeout does. */
class SteppedClock extends SystemClock {
  offset = 0;
  override now(): number {
    return Date.now() + this.offset;
  }
}

describe('daemon: clock steps and suspend', () => {
  it('runs a stop within seconds when the clock jumps past its time, and says how late', { timeout: 60_000 }, async () => {
    const s = scratch(recordingDoor('door', '7000', '  cmd_timeout = 600\n'));
    const clock = new SteppedClock();
    const quiet = new PassThrough().resume();
    const daemon = await Daemon.start(
      { configPath: s.config, interfaces: [], verbose: false, debug: false, lookup: false, pidFile: null, logFile: null, ipv4Only: false, fromEnd: false },
      { clock, stdout: quiet, stderr: quiet },
    );
    try {
      knock(s, '192.0.2.50', 7000);
      await waitFor('the door to open', async () => {
        const status = await statusOf(s);
        return status.open.length === 1 && status.running.length === 0;
      });
      clock.offset = 700_000;
      await waitFor('the stop after the jump', () => linesOf(s.commands).length === 2);
      assert.deepEqual(linesOf(s.commands), ['start door 192.0.2.50', 'stop door 192.0.2.50']);
      const late = /192\.0\.2\.50: door: command timeout \(late by (\d+) s\)/.exec(readFileSync(s.logFile, 'utf8'));
      assert.ok(late);
      assert.ok(Number(late[1]) >= 100, `late by ${late[1]} s (the jump was 700 s, the stop due after 600 s)`);
      assert.equal((await statusOf(s)).counters.stopsLate, 1);
    } finally {
      await daemon.stop();
    }
  });
});
