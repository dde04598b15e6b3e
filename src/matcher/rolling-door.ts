/**
 * A rolling door in the matcher: the rules of docs/rolling-sequences.md §5. A knock on the door's range starts an
 * attempt when it is the first port of an accepted sequence (periods T-1, T, T+1 of the knock's own time); in an
 * attempt, each knock on the range must be the next port of a sequence the attempt follows, or it ends the attempt
 * (and may start a new one). A completed sequence opens the door once per period, for everyone: the period is
 * claimed in the table of used knocks before the open is reported, so a crash in between never leaves it usable.
 *
 * Per hit: one division (the window, whose sequences are derived once per period), one source lookup, and a
 * comparison per accepted sequence. Attempts live in two insertion-ordered maps (still at the first knock, and
 * further on), so MaxSources evicts the oldest fresh attempt first, as the fixed doors' table does.
 */
import { detachedCopy } from '../address.js';
import type { DoorConfig, KnockStep, PortRange } from '../config/types.js';
import type { KnockHit } from '../hit.js';
import { RollingSequences } from '../knocks/rolling.js';
import { UnrecordedUseError, type Use } from '../knocks/used.js';
import { type SourceKey, sourceKey, storedSourceKey } from './address-map.js';
import { DoorVisibility } from './door.js';
import { type Expiring, ExpiryQueue } from './expiry.js';
import type { AttemptSnapshot } from './matcher.js';
import type { RangeDoor, RangeDoorContext, RangeProgress } from './range-door.js';
import { firewallSourceKey, keyAddress, scopedFirewall } from './scope.js';

/**
 * A spent sequence is remembered until its period has left every window, plus this or Seq_Timeout if longer: an
 * attempt started in the period's last accepted moment may still finish, even after a reload lengthened Seq_Timeout.
 */
const SPENT_MARGIN_MS = 3_600_000;

/** A sequence an attempt follows: one accepted period's. */
interface Candidate {
  period: number;
  steps: readonly KnockStep[];
}

class RollingAttempt implements Expiring {
  live = true;
  /** Knocks matched so far. */
  stage = 1;

  constructor(
    readonly source: SourceKey,
    readonly started: number,
    readonly deadline: number,
    /** The sequences it follows: those whose first `stage` ports it knocked, in period order. */
    public candidates: Candidate[],
  ) {}
}

export class RollingDoor implements RangeDoor {
  config: DoorConfig;
  readonly ranges: readonly PortRange[];
  private readonly visibility: DoorVisibility;
  private readonly sequences: RollingSequences;
  private readonly length: number;
  private readonly periodMs: number;
  private readonly timeoutMs: number;
  /** Attempts still at their first knock, and those further on, each oldest first (the eviction order). */
  private readonly fresh = new Map<SourceKey, RollingAttempt>();
  private readonly progressed = new Map<SourceKey, RollingAttempt>();
  private queue: ExpiryQueue<RollingAttempt>;
  /** The last refusal's use and its text: a replayed sequence is usually replayed many times. */
  private lastReplay: { use: Use; detail: string } | null = null;

  constructor(
    config: DoorConfig,
    private readonly context: RangeDoorContext,
  ) {
    const rolling = config.rolling;
    if (rolling === null) throw new Error(`door [${config.name}] is not a rolling door`);
    this.config = config;
    this.ranges = [rolling.ports];
    this.visibility = new DoorVisibility(config, context.isLocal);
    this.sequences = new RollingSequences(config.name, rolling);
    this.length = rolling.length;
    this.periodMs = rolling.period * 1000;
    this.timeoutMs = config.seqTimeout * 1000;
    this.queue = new ExpiryQueue<RollingAttempt>(this.timeoutMs);
  }

  admits(hit: KnockHit): boolean {
    return this.visibility.admits(hit);
  }

  knock(hit: KnockHit): void {
    // Under Knock_Scope = firewall, one address's knocks through two firewalls are two attempts.
    const firewall = scopedFirewall(this.config, hit);
    const key = firewall === undefined ? sourceKey(hit.src) : firewallSourceKey(hit.src, firewall);
    const attempt = this.fresh.get(key) ?? this.progressed.get(key);
    if (attempt !== undefined && this.follow(attempt, hit)) return;
    this.start(hit, key);
  }

  /** §5 rule 4: whether the knock belonged to the attempt (its next port, or a repeat it ignores); if not, the attempt is over. */
  private follow(attempt: RollingAttempt, hit: KnockHit): boolean {
    const port = hit.dport;
    const stage = attempt.stage;
    const candidates = attempt.candidates;
    let kept = 0;
    for (const candidate of candidates) if (candidate.steps[stage]!.port === port) candidates[kept++] = candidate;
    if (kept === 0) {
      if (this.config.ignoreRepeats && candidates[0]!.steps[stage - 1]!.port === port) return true;
      this.end(attempt);
      return false;
    }
    candidates.length = kept;
    attempt.stage++;
    if (stage === 1) {
      this.fresh.delete(attempt.source);
      this.progressed.set(attempt.source, attempt);
    }
    const ip = keyAddress(attempt.source);
    this.context.emit({ type: 'stage', time: hit.time, door: this.config, ip, stage: attempt.stage });
    if (attempt.stage === this.length) {
      this.end(attempt);
      this.complete(candidates, ip, hit.time);
    }
    return true;
  }

  /** §5 rule 3: a knock on the first port of an accepted sequence starts an attempt that follows every such sequence. */
  private start(hit: KnockHit, key: SourceKey): void {
    let candidates: Candidate[] | null = null;
    for (const accepted of this.sequences.window(hit.time).accepted) {
      if (accepted.steps[0]!.port === hit.dport) (candidates ??= []).push(accepted);
    }
    if (candidates === null) return;
    if (this.length === 1) {
      const ip = detachedCopy(hit.src);
      this.context.emit({ type: 'stage', time: hit.time, door: this.config, ip, stage: 1 });
      this.complete(candidates, ip, hit.time);
      return;
    }
    if (this.fresh.size + this.progressed.size >= this.context.maxSources) this.evictOldest(hit.time);
    const source = storedSourceKey(key);
    const attempt = new RollingAttempt(source, hit.time, hit.time + this.timeoutMs, candidates);
    this.fresh.set(source, attempt);
    this.queue.push(attempt);
    this.context.emit({ type: 'stage', time: hit.time, door: this.config, ip: keyAddress(source), stage: 1 });
  }

  /**
   * §5 rule 6: the first completed sequence whose period is not spent opens the door, and is spent from now on;
   * when every one is spent, the knocks were a replay, and the log says when and by whom the sequence was used.
   */
  private complete(candidates: readonly Candidate[], ip: string, time: number): void {
    let refusal: { reason: 'replay' | 'unrecorded'; detail: string } | null = null;
    for (const { period } of candidates) {
      let earlier;
      try {
        earlier = this.context.used.claim(
          {
            scope: this.config.name,
            id: `period ${period}`,
            usableFrom: (period - 1) * this.periodMs,
            keepUntil: (period + 2) * this.periodMs + Math.max(this.timeoutMs, SPENT_MARGIN_MS),
            use: { at: time, by: ip },
          },
          time,
        );
      } catch (error) {
        if (!(error instanceof UnrecordedUseError)) throw error;
        refusal ??= { reason: 'unrecorded', detail: `the use of the sequence of period ${period} cannot be recorded: ${error.message}` };
        continue;
      }
      if (earlier === null) {
        this.context.emit({ type: 'open', time, door: this.config, ip, period });
        return;
      }
      refusal ??= { reason: 'replay', detail: this.replayDetail(period, earlier) };
    }
    this.context.emit({ type: 'refused', time, door: this.config, ip, ...refusal! });
  }

  private replayDetail(period: number, use: Use): string {
    if (this.lastReplay?.use !== use) this.lastReplay = { use, detail: `the sequence of period ${period} was used already at ${new Date(use.at).toISOString()} by ${use.by}` };
    return this.lastReplay.detail;
  }

  /** Beyond MaxSources: the oldest attempt still at its first knock goes, else the oldest one further on. */
  private evictOldest(time: number): void {
    const victim = this.fresh.values().next().value ?? this.progressed.values().next().value;
    if (victim === undefined) return;
    this.end(victim);
    this.context.emit({ type: 'evicted', time, ip: keyAddress(victim.source), count: 1 });
  }

  private end(attempt: RollingAttempt): void {
    attempt.live = false;
    if (!this.fresh.delete(attempt.source)) this.progressed.delete(attempt.source);
    this.queue.noteEnded();
  }

  nextDeadline(): number | null {
    return this.queue.peek()?.deadline ?? null;
  }

  expire(now: number): void {
    for (let attempt = this.queue.peek(); attempt !== undefined && attempt.deadline <= now; attempt = this.queue.peek()) {
      this.queue.shift();
      attempt.live = false;
      if (!this.fresh.delete(attempt.source)) this.progressed.delete(attempt.source);
      this.context.emit({ type: 'timeout', time: attempt.deadline, door: this.config, ip: keyAddress(attempt.source), stage: attempt.stage });
    }
  }

  abandonAll(): number {
    const count = this.fresh.size + this.progressed.size;
    this.fresh.clear();
    this.progressed.clear();
    this.queue = new ExpiryQueue<RollingAttempt>(this.timeoutMs);
    return count;
  }

  progress(): RangeProgress {
    const count = this.fresh.size + this.progressed.size;
    const firsts = [this.fresh.values().next().value, this.progressed.values().next().value].filter((attempt) => attempt !== undefined);
    const oldest = firsts.sort((a, b) => a.started - b.started)[0];
    return { sources: count, attempts: count, oldest: oldest === undefined ? null : this.snapshot(oldest) };
  }

  private snapshot(attempt: RollingAttempt): AttemptSnapshot {
    return { door: this.config.name, ip: keyAddress(attempt.source), stage: attempt.stage, of: this.length, started: attempt.started, deadline: attempt.deadline };
  }
}
