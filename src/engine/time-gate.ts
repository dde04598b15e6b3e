/**
 * The time rules every hit passes before the matcher sees it (docs/design.md, "Time"):
 * - a hit stamped more than MaxKnockAge behind the clock is refused: re-read old lines (a log readable late,
 *   rewritten by rename, restored from a backup) can never open a door. The daemon's clock is the wall clock;
 *   replay's is the latest stamp handled, so replay refuses exactly what a daemon reading the log live would have;
 * - live, a hit stamped further than a small skew ahead of the wall clock is refused too (a forged or broken line);
 * - per input, time never runs backwards: a hit stamped before the latest hit of its input is handled at that
 *   latest time, so it can neither revive an attempt nor stretch one beyond Seq_Timeout.
 */
import type { KnockHit } from '../hit.js';
import type { TimeEvent } from './events.js';

export interface TimeRules {
  /** The clock stamps are judged against (ms). */
  now: () => number;
  maxKnockAgeMs: number;
  /**
   * Live only (the wall clock): stamps ahead of it are refused, and `onStepBack` is called when a stamp lies far
   * behind its input's latest one, before the hit is handled: the clock may have stepped back (then the engine
   * calls forgetLatest()). Null in replay, where the stamps are the clock.
   */
  live: { onStepBack: () => void } | null;
}

/**
 * How far ahead of the wall clock a stamp may be: a remote firewall's clock (collector) or a whole-second
 * stamp refined by the reader may be a little ahead, but a knock from the future is a forged or broken line.
 */
export const MAX_FUTURE_SKEW_MS = 10_000;
/** A stamp this far behind its input's latest one may mean that the clock stepped back. */
const STEP_BACK_MS = 2000;
/** A gap this long between two hits of one input is reported by replay (a log that skips days, a wrong year). */
export const LONG_GAP_MS = 86_400_000;

/** What the gate saw of one input. */
export interface InputTime {
  input: string;
  /** The latest stamp this input delivered (the time its next hit is handled at, at the earliest). */
  latest: number;
  stale: number;
  future: number;
  /** Hits stamped before the input's latest time, and the largest such step back (ms). */
  reordered: number;
  largestStepBackMs: number;
  /** Gaps longer than LONG_GAP_MS between two consecutive hits, the first few kept. */
  longGaps: number;
  firstGaps: Array<{ from: number; to: number }>;
}

const GAPS_KEPT = 5;

export class TimeGate {
  private readonly inputs = new Map<string, InputTime>();
  /** The input of the last hit: consecutive hits nearly always come from the same one. */
  private last: InputTime | null = null;

  constructor(
    private readonly rules: TimeRules,
    private readonly report: (event: TimeEvent) => void,
  ) {}

  /**
   * Whether the matcher may see `hit`; when it may, `hit.time` is the time to handle it at (its stamp, or its
   * input's latest time when the stamp is earlier).
   */
  admit(hit: KnockHit): boolean {
    const stamp = hit.time;
    let state = this.last;
    if (state === null || state.input !== hit.input) state = this.inputOf(hit.input);
    this.last = state;
    const rules = this.rules;
    const now = rules.now();
    if (stamp < now - rules.maxKnockAgeMs) {
      state.stale++;
      this.report({ type: 'stale', time: now, input: hit.input, stamp, ip: hit.src });
      return false;
    }
    if (rules.live !== null) {
      if (stamp > now + MAX_FUTURE_SKEW_MS) {
        state.future++;
        this.report({ type: 'future', time: now, input: hit.input, stamp, ip: hit.src });
        return false;
      }
      if (stamp < state.latest - STEP_BACK_MS) rules.live.onStepBack();
    }
    if (stamp < state.latest) {
      state.reordered++;
      state.largestStepBackMs = Math.max(state.largestStepBackMs, state.latest - stamp);
      hit.time = state.latest;
      this.report({ type: 'reordered', time: state.latest, input: hit.input, stamp, ip: hit.src });
      return true;
    }
    if (stamp - state.latest > LONG_GAP_MS && state.latest !== -Infinity) {
      state.longGaps++;
      if (state.firstGaps.length < GAPS_KEPT) state.firstGaps.push({ from: state.latest, to: stamp });
    }
    state.latest = stamp;
    return true;
  }

  /** A reload changed MaxKnockAge. */
  setMaxKnockAge(ms: number): void {
    this.rules.maxKnockAgeMs = ms;
  }

  /** The wall clock stepped back: the inputs' latest times are ahead of every new stamp and must be forgotten. */
  forgetLatest(): void {
    for (const state of this.inputs.values()) state.latest = -Infinity;
  }

  /** Per input, in the order first seen. */
  summary(): InputTime[] {
    return [...this.inputs.values()].map((state) => ({ ...state, firstGaps: [...state.firstGaps] }));
  }

  private inputOf(input: string): InputTime {
    let state = this.inputs.get(input);
    if (state === undefined) {
      state = { input, latest: -Infinity, stale: 0, future: 0, reordered: 0, largestStepBackMs: 0, longGaps: 0, firstGaps: [] };
      this.inputs.set(input, state);
    }
    return state;
  }
}
