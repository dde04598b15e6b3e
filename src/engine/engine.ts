/**
 * The core every mode shares (docs/design.md): hits pass the time rules, the matcher applies the doors, an open
 * runs the door's commands through the action layer, and every event goes to the sinks. The engine owns time:
 * which clock counts (the wall clock in the daemon, the stamps in replay), when knocks in progress expire, and
 * in what order hits reach the matcher. The daemon and replay are drivers of this one class.
 */
import type { Clock, Timer, VirtualClock } from '../actions/clock.js';
import { DoorActions, type RunningCommand } from '../actions/doors.js';
import type { CommandRunner } from '../actions/runner.js';
import type { PendingStop, StopStore } from '../actions/stop-store.js';
import type { Config } from '../config/types.js';
import type { KnockHit } from '../hit.js';
import type { UsedKnocks } from '../knocks/used.js';
import { type MatchEvent, Matcher, type MatcherSummary } from '../matcher/matcher.js';
import type { OneTimeFiles } from '../matcher/one-time-files.js';
import type { Watch } from '../watch.js';
import type { EventSink, KnockEvent } from './events.js';
import { type InputTime, TimeGate } from './time-gate.js';

export type EngineTime =
  /**
   * The daemon: the wall clock is "now"; stamps older than MaxKnockAge or ahead of the clock are refused;
   * `caughtUp` tells whether every input has read its backlog (until then the clock expires no knock).
   */
  | { kind: 'live'; clock: Clock; caughtUp: () => boolean }
  /** Replay: the stamps drive a virtual clock, advanced only by `feed` and `finish`. */
  | { kind: 'event'; clock: VirtualClock };

export interface EngineOptions {
  time: EngineTime;
  runner: CommandRunner;
  store: StopStore;
  oneTimeFiles: OneTimeFiles;
  /** Which rolling sequences and encrypted messages were used (the daemon: in StateDir; replay: in memory). */
  usedKnocks: UsedKnocks;
  /** Destination check for doors without Target; null = any destination (file mode, replay of logs). */
  isLocal: ((dst: string) => boolean) | null;
  sinks: EventSink[];
  /** Problems that are not events (a bad one-time sequence line, …). */
  onWarning: (message: string) => void;
  /**
   * Called with the id of the input whose hit completed a sequence, after the open event and before that open's
   * commands run: the daemon saves the input's position there, so a restart never reads that knock again.
   */
  beforeCommands?: (input: string) => void;
  /** The watch grew: a one-time file edited since the last load moved its door to a port the watch lacked. */
  onWatchChanged?: (watch: Watch) => void;
}

/**
 * Knocks are judged by the time written in the log, which lags the clock a little (rsyslog, journald
 * batching): the clock declares a timeout only once it is this far past it, so a last knock logged just before
 * its deadline but read just after still counts. The timeout event keeps its exact time.
 */
const EXPIRY_GRACE_MS = 1000;
/**
 * While hits keep coming their own times drive expiry: the clock expires knocks only once no hit came for this
 * long, so a sequence in a backlog read after a restart is judged by its stamps, not by when it was read.
 */
const HIT_FLOW_IDLE_MS = 2000;
/** How often the live engine checks the clock: stops due by the wall clock, knocks to expire, clock steps. */
const TICK_MS = 1000;
/** A change of the wall clock against elapsed time larger than this is a step (NTP slews far less). */
const CLOCK_STEP_MS = 2000;

export interface EngineStatus {
  matcher: MatcherSummary;
  inputs: InputTime[];
}

export class Engine {
  private readonly matcher: Matcher;
  private readonly actions: DoorActions;
  private readonly gate: TimeGate;
  private readonly clock: Clock;
  private readonly live: boolean;
  private watchValue: Watch;
  private maxKnockAgeMs: number;
  /** The shortest Seq_Timeout: no hit can add a deadline earlier than its time plus this. */
  private shortestTimeoutMs: number;
  /** The hit being handled (its input is saved before an open's commands run). */
  private current: KnockHit | null = null;
  private expiryTimer: Timer | null = null;
  private expiryDue = Infinity;
  /** The clock expires no knock before this time: hits are flowing (HIT_FLOW_IDLE_MS). */
  private heldUntil = 0;
  private tickTimer: Timer | null = null;
  /** now() − monotonic() at the last check: when it moves, the wall clock stepped. */
  private clockOffset: number;

  constructor(
    config: Config,
    private readonly options: EngineOptions,
  ) {
    this.clock = options.time.clock;
    this.live = options.time.kind === 'live';
    this.clockOffset = this.clock.now() - this.clock.monotonic();
    this.maxKnockAgeMs = config.options.maxKnockAge * 1000;
    this.shortestTimeoutMs = shortestTimeout(config);
    const emit = (event: KnockEvent): void => {
      for (const sink of options.sinks) sink(event);
    };
    this.gate = new TimeGate(
      { now: () => this.clock.now(), maxKnockAgeMs: this.maxKnockAgeMs, live: this.live ? { onStepBack: () => this.checkClock() } : null },
      emit,
    );
    this.actions = new DoorActions(config.doors, {
      clock: this.clock,
      runner: options.runner,
      store: options.store,
      emit,
      commandLimit: config.options.commandLimit,
    });
    this.matcher = new Matcher(
      config.doors,
      { maxSources: config.options.maxSources, isLocal: options.isLocal, onWarning: options.onWarning, oneTimeFiles: options.oneTimeFiles, usedKnocks: options.usedKnocks },
      (event) => this.matched(event, emit),
    );
    this.watchValue = this.matcher.watch();
  }

  /** What the inputs must let through (ports for log pre-checks, sequences for capture filters). */
  watch(): Watch {
    return this.watchValue;
  }

  /** Live: starts checking the clock (pending stops re-armed first with restore()). */
  start(): void {
    if (!this.live || this.tickTimer !== null) return;
    this.armTick();
    this.armExpiry();
  }

  /** Live: stops the engine's timers (pending stops stay with the action layer: disarm() or closeAll()). */
  stop(): void {
    if (this.tickTimer !== null) this.clock.cancel(this.tickTimer);
    this.tickTimer = null;
    if (this.expiryTimer !== null) this.clock.cancel(this.expiryTimer);
    this.expiryTimer = null;
    this.expiryDue = Infinity;
  }

  /** The sink of every live input: one hit, handled synchronously. */
  readonly hit = (hit: KnockHit): void => {
    if (!this.gate.admit(hit)) return;
    this.heldUntil = this.clock.now() + HIT_FLOW_IDLE_MS;
    this.handle(hit);
  };

  /**
   * Replay: hands over hits in the order read, moving the virtual clock to each one's time first, so timeouts and
   * stops due before it happen before it; commands a hit starts finish before the next hit.
   */
  async feed(hits: readonly KnockHit[]): Promise<void> {
    const clock = this.virtualClock();
    for (const hit of hits) {
      if (!this.gate.admit(hit)) continue;
      // Most hits find nothing due and start no command: they are handled without a single await.
      if ((clock.nextDue() ?? Infinity) <= hit.time) await clock.advanceTo(hit.time, this.settled);
      else clock.passTo(hit.time);
      this.handle(hit);
      if (this.actions.busy) await this.settled();
    }
  }

  /** Replay: the input has ended; every timeout and stop still pending happens, in time order. */
  async finish(): Promise<void> {
    await this.virtualClock().advanceTo(Infinity, this.settled);
    await this.settled();
  }

  private virtualClock(): VirtualClock {
    if (this.options.time.kind !== 'event') throw new Error('feed() and finish() are for event time (replay)');
    return this.options.time.clock;
  }

  private handle(hit: KnockHit): void {
    this.current = hit;
    this.matcher.handle(hit);
    this.current = null;
    // The armed timer stays right unless this hit may have added an earlier deadline (per hit, this comparison is all it costs).
    if (this.expiryTimer === null || this.expiryDue > hit.time + this.shortestTimeoutMs) this.armExpiry();
  }

  private matched(event: MatchEvent, emit: (event: KnockEvent) => void): void {
    emit(event);
    if (event.type === 'open') {
      if (this.current !== null) this.options.beforeCommands?.(this.current.input);
      this.actions.open(event.door, event.ip, event.request ?? null, event.firewall);
    } else if (event.type === 'sequence' && !this.watchValue.covers(event.sequence)) {
      this.watchValue = this.watchValue.with({ door: event.door, sequence: event.sequence });
      this.options.onWatchChanged?.(this.watchValue);
    }
  }

  /** Keeps one timer on the earliest sequence deadline, so timeouts are reported when they happen. */
  private armExpiry(): void {
    const next = this.matcher.nextDeadline();
    if (next === null || next >= this.expiryDue) return;
    if (this.expiryTimer !== null) this.clock.cancel(this.expiryTimer);
    this.expiryDue = next;
    const due = this.live ? Math.max(next + EXPIRY_GRACE_MS, this.heldUntil) : next;
    this.expiryTimer = this.clock.at(due, () => {
      this.expiryTimer = null;
      this.expiryDue = Infinity;
      this.expireByClock();
      this.armExpiry();
    });
  }

  /** Expires knocks by the clock; live, not while hits flow or a backlog is read (their own times do it then). */
  private expireByClock(): void {
    const now = this.clock.now();
    if (!this.live) {
      this.matcher.expire(now);
      return;
    }
    this.checkClock();
    if (now < this.heldUntil) return;
    if (this.options.time.kind === 'live' && !this.options.time.caughtUp()) {
      this.heldUntil = now + HIT_FLOW_IDLE_MS;
      return;
    }
    this.matcher.expire(now - EXPIRY_GRACE_MS);
  }

  /** Every TICK_MS of elapsed time (a wall-clock step must not silence it): clock check, due stops, expiry. */
  private armTick(): void {
    this.tickTimer = this.clock.after(TICK_MS, () => {
      this.checkClock();
      this.actions.reconcile();
      this.expireByClock();
      this.armExpiry();
      this.armTick();
    });
  }

  /**
   * A step of the wall clock (NTP, suspend, an admin): forwards, stops now due run at once and knocks in progress
   * expire by the new time; backwards, knocks in progress are abandoned (their times can no longer be compared
   * with new stamps) and the inputs' latest times forgotten, so no knock is ever judged across the step.
   */
  private checkClock(): void {
    const now = this.clock.now();
    const offset = now - this.clock.monotonic();
    const step = offset - this.clockOffset;
    this.clockOffset = offset;
    if (Math.abs(step) < CLOCK_STEP_MS) return;
    let abandoned = 0;
    if (step < 0) {
      abandoned = this.matcher.abandonAll();
      this.gate.forgetLatest();
      this.heldUntil = 0;
    }
    for (const sink of this.options.sinks) sink({ type: 'clock-step', time: now, stepMs: step, abandoned });
    this.actions.reconcile();
  }

  /** Applies a reloaded config: doors (unchanged doors keep their knocks in progress), commands, limits, MaxKnockAge. */
  reload(config: Config): void {
    this.matcher.reload(config.doors);
    this.actions.setDoors(config.doors, config.options.commandLimit);
    this.shortestTimeoutMs = shortestTimeout(config);
    this.maxKnockAgeMs = config.options.maxKnockAge * 1000;
    this.gate.setMaxKnockAge(this.maxKnockAgeMs);
    this.watchValue = this.matcher.watch();
    this.armExpiry();
  }

  status(): EngineStatus {
    return { matcher: this.matcher.summary(), inputs: this.gate.summary() };
  }

  // ── the action layer, as the drivers need it ─────────────────────────────────────────────────

  /** Re-arms the stops the store kept (daemon start): overdue ones run at once; returns them, soonest first. */
  restoreStops(): PendingStop[] {
    return this.actions.restore();
  }

  pendingStops(): PendingStop[] {
    return this.actions.pending();
  }

  runningCommands(): RunningCommand[] {
    return this.actions.running();
  }

  /** Shutdown: with `closeAll`, every pending stop runs now (CloseOnExit); else they stay recorded for the next start. */
  release(closeAll: boolean): void {
    this.stop();
    if (closeAll) this.actions.closeAll();
    else this.actions.disarm();
  }

  /** Resolves when every command started so far has finished. */
  readonly settled = (): Promise<void> => this.actions.settled();
}

function shortestTimeout(config: Config): number {
  return Math.min(...config.doors.map((door) => door.seqTimeout * 1000));
}
