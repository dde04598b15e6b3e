/**
 * A clock for engine tests that behaves as the system clock does, by hand: the wall clock and the monotonic clock
 * advance together (`advance`), but the wall clock can also step on its own (`step`: NTP, an admin, a resume from
 * suspend), and timers count elapsed time from when they were armed, as setTimeout does.
 */
import type { Clock, Timer } from '../../src/actions/clock.js';

interface ManualTimer extends Timer {
  /** Monotonic time it fires at. */
  fires: number;
  fn: () => void;
  cancelled: boolean;
}

export class ManualClock implements Clock {
  private mono = 0;
  private readonly timers = new Set<ManualTimer>();

  constructor(private wall: number) {}

  now(): number {
    return this.wall;
  }

  monotonic(): number {
    return this.mono;
  }

  /** As SystemClock.at: the delay is taken from now() when armed, then counted in elapsed time. */
  at(due: number, fn: () => void): Timer {
    return this.arm(due, this.mono + Math.max(0, due - this.wall), fn);
  }

  after(ms: number, fn: () => void): Timer {
    return this.arm(this.wall + ms, this.mono + ms, fn);
  }

  cancel(timer: Timer): void {
    (timer as ManualTimer).cancelled = true;
    this.timers.delete(timer as ManualTimer);
  }

  /** Lets `ms` of time pass, firing timers in order (each with the clocks at its moment). */
  advance(ms: number): void {
    const end = this.mono + ms;
    for (;;) {
      let next: ManualTimer | null = null;
      for (const timer of this.timers) if (timer.fires <= end && (next === null || timer.fires < next.fires)) next = timer;
      if (next === null) break;
      this.timers.delete(next);
      this.wall += next.fires - this.mono;
      this.mono = next.fires;
      next.fn();
    }
    this.wall += end - this.mono;
    this.mono = end;
  }

  /** The wall clock jumps by `ms` (negative: back); elapsed time and the timers do not notice. */
  step(ms: number): void {
    this.wall += ms;
  }

  private arm(due: number, fires: number, fn: () => void): Timer {
    const timer: ManualTimer = { due, fires, fn, cancelled: false };
    this.timers.add(timer);
    return timer;
  }
}
