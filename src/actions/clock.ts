/**
 * Time for the action layer. The daemon uses the system clock; replay uses a virtual clock driven by
 * the event times written in the logs, so "stop 30 s after start" lands at the right place in a report
 * without waiting 30 s.
 */

export interface Timer {
  readonly due: number;
}

export interface Clock {
  /** ms since the epoch (the wall clock: NTP, suspend and admins move it). */
  now(): number;
  /** ms from an arbitrary origin that only moves forward with elapsed time (what timers count): a step of now() against it is a clock step. */
  monotonic(): number;
  /** Calls `fn` once at `due` (ms since the epoch), or at once when `due` has passed. */
  at(due: number, fn: () => void): Timer;
  /** Calls `fn` once after `ms` of elapsed (monotonic) time, whatever the wall clock does meanwhile. */
  after(ms: number, fn: () => void): Timer;
  cancel(timer: Timer): void;
}

/** setTimeout caps delays at about 24.8 days; longer waits are chained. */
const MAX_DELAY = 2 ** 31 - 1;
/** A timer that fires less than this before its due time fired early (a busy loop turn), not after a clock step. */
const EARLY_TOLERANCE_MS = 1000;

interface SystemTimer extends Timer {
  handle: NodeJS.Timeout | null;
}

export class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }

  monotonic(): number {
    return performance.now();
  }

  at(due: number, fn: () => void): Timer {
    const timer: SystemTimer = { due, handle: null };
    // The delay is taken from now() once per arm: the timer then counts monotonic time, as a real one does.
    const arm = (): void => {
      const delay = due - this.now();
      timer.handle = delay > MAX_DELAY ? setTimeout(arm, MAX_DELAY) : setTimeout(fire, Math.max(0, delay));
    };
    // libuv counts a delay from the loop's cached time, so a timer armed late in a busy loop turn fires that much
    // early: it waits the rest. A larger difference is a clock step back, which must not delay it (see Engine).
    const fire = (): void => {
      const early = due - this.now();
      if (early > 0 && early < EARLY_TOLERANCE_MS) timer.handle = setTimeout(fire, early);
      else fn();
    };
    arm();
    return timer;
  }

  after(ms: number, fn: () => void): Timer {
    const timer: SystemTimer = { due: this.now() + ms, handle: null };
    timer.handle = setTimeout(fn, Math.min(Math.max(0, ms), MAX_DELAY));
    return timer;
  }

  cancel(timer: Timer): void {
    const handle = (timer as SystemTimer).handle;
    if (handle !== null) clearTimeout(handle);
  }
}

interface VirtualTimer extends Timer {
  fn: () => void;
  seq: number;
  cancelled: boolean;
}

function earlier(a: VirtualTimer, b: VirtualTimer): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}

export class VirtualClock implements Clock {
  private current: number;
  /** Binary min-heap on (due, creation order); cancelled timers are dropped when they surface. */
  private readonly heap: VirtualTimer[] = [];
  private seq = 0;

  constructor(start = 0) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  monotonic(): number {
    return this.current;
  }

  at(due: number, fn: () => void): Timer {
    const timer: VirtualTimer = { due, fn, seq: this.seq++, cancelled: false };
    const heap = this.heap;
    heap.push(timer);
    for (let i = heap.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!earlier(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
    return timer;
  }

  after(ms: number, fn: () => void): Timer {
    return this.at(this.current + ms, fn);
  }

  cancel(timer: Timer): void {
    (timer as VirtualTimer).cancelled = true;
  }

  /** Due time of the earliest pending timer, or null. */
  nextDue(): number | null {
    return this.peek()?.due ?? null;
  }

  /** Moves time forward to `time` when no timer is due by then (the cheap, synchronous case of advanceTo). */
  passTo(time: number): void {
    const next = this.peek();
    if (next !== null && next.due <= time) throw new Error('passTo() over a due timer: use advanceTo()');
    if (time > this.current) this.current = time;
  }

  /**
   * Moves time forward to `time`, firing due timers in (due, creation) order with the clock set to each
   * timer's due time; `settle` is awaited after each so work a timer started completes before the next.
   * Time never moves backwards (out-of-order log lines keep the latest time).
   */
  async advanceTo(time: number, settle: () => Promise<void>): Promise<void> {
    for (let next = this.peek(); next !== null && next.due <= time; next = this.peek()) {
      this.pop();
      if (next.due > this.current) this.current = next.due;
      next.fn();
      await settle();
    }
    if (time > this.current) this.current = time;
  }

  private peek(): VirtualTimer | null {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap[0] ?? null;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    heap[0] = last;
    for (let i = 0; ; ) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && earlier(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && earlier(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === i) break;
      [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
      i = smallest;
    }
  }
}
