/**
 * The matcher: knockd 0.8's knock algorithm with its bugs fixed (docs/design.md, "Matching").
 * Input-agnostic, synchronous, and pure with respect to time: time comes only
 * from `hit.time` and `expire(now)`; the clock is never read.
 *
 * Deliberate differences from knockd, each pinned by a test:
 * - one source's expiry or success never touches another source's attempts (knockd's "head wipe");
 * - the timeout is exact milliseconds from the first knock (knockd rounded to whole seconds);
 * - a timeout is reported with the moment it happened, as soon as `expire()` or any hit passes it
 *   (knockd logged it at the next visible packet, issue #71);
 * - one-time sequences: the used line gets a `#` inserted (not its first byte overwritten), exactly the
 *   used line is marked, the next sequence is watched for IPv4 and IPv6 alike, no stage carries over into
 *   the next sequence, and the last sequence disables the door instead of crashing;
 * - a reload keeps attempts on doors whose matching settings did not change;
 * - extras knockd lacks: Allow_From, Ignore_Repeats, Knock_Scope (matcher/scope.ts), and a cap on sources with knocks in progress.
 *
 * Doors that watch ranges of ports (rolling and encrypted doors) plug in through RangeDoor (range-door.ts): a hit
 * on a port no fixed door watches costs one more array read, and a hit on a range costs that lookup plus the
 * door's own work.
 *
 * `emit` runs synchronously inside `handle`/`expire`/`reload` and must not call back into the matcher.
 */
import { detachedCopy } from '../address.js';
import { formatSequence } from '../config/sequence.js';
import type { DoorConfig, KnockScope, KnockStep, OpenRequest } from '../config/types.js';
import type { KnockHit } from '../hit.js';
import type { RefusalReason } from '../knocks/decoder.js';
import type { UsedKnocks } from '../knocks/used.js';
import { capRepeats, messageKind, moreLikeThis } from '../safe-text.js';
import { type SourceKey, sourceKey, storedSourceKey } from './address-map.js';
import { Attempt, SourceTable } from './attempts.js';
import { Door, doorIdentity, stepKey } from './door.js';
import { ExpiryQueue } from './expiry.js';
import { type DoorRange, type DoorSequence, Watch } from '../watch.js';
import { firewallSourceKey, type ScopesInUse, scopesInUse } from './scope.js';
import type { OneTimeScan } from './one-time.js';
import type { OneTimeFiles } from './one-time-files.js';
import { isRangeDoor, RangeDoors } from './range-doors.js';

/** Most ended attempts kept for reuse (see Matcher.spare). */
const SPARE_ATTEMPTS = 4096;

export interface MatcherOptions {
  /** Hard cap on sources with a knock in progress; beyond it the oldest are evicted (fresh ones first). */
  maxSources: number;
  /** Destination acceptance for doors WITHOUT Target: null = every destination counts (file mode: the LOG rule decided);
   *  else a predicate (pcap mode: the interfaces' addresses). Doors with Target accept exactly hit.dst === target. */
  isLocal: ((dst: string) => boolean) | null;
  /**
   * Problems found while loading one-time sequence files (invalid lines, each reported once; a file with no
   * unused line, which leaves its door disabled; a file that cannot be read or written). Default: process.emitWarning.
   */
  onWarning?: (message: string) => void;
  /** Where one-time sequence files are read and marked (the daemon: on disk; replay: in memory). */
  oneTimeFiles: OneTimeFiles;
  /** Which rolling sequences and encrypted messages were used (the daemon: in StateDir; replay: in memory). */
  usedKnocks: UsedKnocks;
}

export type MatchEvent =
  | { type: 'stage'; time: number; door: DoorConfig; ip: string; stage: number }
  /**
   * `request`: what an encrypted message asked for (the door opens for `ip`, which Trust_Knock_IP may make another
   * address than the knocks'); `period`: the rolling sequence that opened; `firewall`: the firewall of the knock
   * that completed the sequence, when the hits name one.
   */
  | { type: 'open'; time: number; door: DoorConfig; ip: string; request?: OpenRequest; period?: number; firewall?: string }
  /** A one-time knock that opens nothing: a spent rolling sequence, or an encrypted message refused (docs/encrypted-knocks.md). */
  | { type: 'refused'; time: number; door: DoorConfig; ip: string; reason: Exclude<RefusalReason, 'evicted'>; detail: string }
  | { type: 'timeout'; time: number; door: DoorConfig; ip: string; stage: number }
  | { type: 'sequence'; time: number; door: DoorConfig; sequence: KnockStep[] }
  /** `error` is set when the door was disabled because its file could not be rewritten (fail closed), not used up. */
  | { type: 'exhausted'; time: number; door: DoorConfig; error?: string }
  | { type: 'evicted'; time: number; ip: string; count: number };

export interface MatcherCounters {
  /** Every hit handed to `handle`. */
  hits: number;
  /** Hits some enabled door could see (port, flags, destination, source). */
  visible: number;
  stages: number;
  opens: number;
  timeouts: number;
  /** Sources dropped by the MaxSources cap. */
  evicted: number;
  /** Spent rolling sequences and refused encrypted messages. */
  refused: number;
}

export interface AttemptSnapshot {
  door: string;
  ip: string;
  /** Steps matched so far, of `of`. */
  stage: number;
  of: number;
  started: number;
  deadline: number;
}

export interface MatcherSummary {
  attempts: number;
  sources: number;
  /** The attempts in progress that started first, oldest first (as many as asked for). */
  inProgress: AttemptSnapshot[];
  counters: MatcherCounters;
}

export class Matcher {
  private doors: Door[] = [];
  /** stepKey → enabled doors with that step anywhere: a hit on any other key is invisible. */
  private watchers = new Map<number, Door[]>();
  /** stepKey → enabled doors whose first step it is, in file order. */
  private starters = new Map<number, Door[]>();
  /** The Knock_Scope values of the enabled doors: hits from a firewall are matched once per scope in use. */
  private scopes: ScopesInUse = 'firewall';
  /** The hit a range door is handling (its opens carry that knock's firewall). */
  private rangeHit: KnockHit | null = null;
  private readonly sources = new SourceTable();
  /**
   * Ended attempts nothing refers to any more, made into new ones: under a flood of new sources, attempts live
   * long enough to reach V8's old generation, and allocating one per source would pile up garbage there
   * (hundreds of MB of RSS before a full collection) although MaxSources bounds what is live.
   */
  private readonly spare: Attempt[] = [];
  /** One queue per Seq_Timeout value. */
  private readonly queues = new Map<number, ExpiryQueue<Attempt>>();
  /** No pending deadline is earlier (exact after `expire`): a hit before it costs one comparison. */
  private earliestDeadline = Infinity;
  private readonly counters: MatcherCounters = { hits: 0, visible: 0, stages: 0, opens: 0, timeouts: 0, evicted: 0, refused: 0 };
  /** Rolling and encrypted doors. */
  private readonly ranges: RangeDoors;
  /** stepKeys that fixed doors and range doors both watch; null (the usual case) when there is none. */
  private sharedKeys: Set<number> | null = null;
  /** One-time file problems already reported (by message, which names file and line). */
  private readonly reported = new Set<string>();
  private readonly warn: (message: string) => void;

  constructor(
    doors: readonly DoorConfig[],
    private readonly options: MatcherOptions,
    private readonly emit: (event: MatchEvent) => void,
  ) {
    this.warn = options.onWarning ?? ((message) => process.emitWarning(message, 'KnocktailWarning'));
    this.ranges = new RangeDoors({ emit: this.rangeEvent, maxSources: options.maxSources, used: options.usedKnocks, isLocal: options.isLocal });
    this.reload(doors);
  }

  /**
   * Processes one hit: first expires every attempt whose deadline <= hit.time (timeouts in deadline order),
   * then applies the hit. Events are emitted synchronously, in order.
   */
  handle(hit: KnockHit): void {
    this.counters.hits++;
    if (hit.time >= this.earliestDeadline) this.expire(hit.time);
    const key = stepKey(hit.proto, hit.dport);
    const watchers = this.watchers.get(key);
    if (watchers === undefined) {
      if (this.rangeKnock(hit, key)) this.counters.visible++;
      return;
    }
    const rangeSaw = this.sharedKeys !== null && this.sharedKeys.has(key) && this.rangeKnock(hit, key);
    if (!anyAdmits(watchers, hit)) {
      if (rangeSaw) this.counters.visible++;
      return;
    }
    this.counters.visible++;
    const firewall = hit.firewall;
    if (firewall === undefined || this.scopes === 'any') {
      this.knock(hit, key, sourceKey(hit.src), null);
    } else if (this.scopes === 'firewall') {
      this.knock(hit, key, firewallSourceKey(hit.src, firewall), null);
    } else {
      this.knock(hit, key, firewallSourceKey(hit.src, firewall), 'firewall');
      this.knock(hit, key, sourceKey(hit.src), 'any');
    }
  }

  /** Matching steps 2 and 3 for the source's attempts under `source`; `scope` set: only doors of that Knock_Scope start attempts. */
  private knock(hit: KnockHit, key: number, source: SourceKey, scope: KnockScope | null): void {
    const first = this.sources.first(source);
    if (first === undefined || !this.continueKnocks(first, hit, key)) this.startKnocks(first !== undefined, hit, key, source, scope);
  }

  /** Expires attempts due by `now` (ms), fixed and range doors', emitting timeouts in deadline order. */
  expire(now: number): void {
    for (;;) {
      const queue = this.earliestQueue();
      const attempt = queue === undefined ? undefined : queue.peek()!;
      const fixedDue = attempt === undefined ? Infinity : attempt.deadline;
      const rangeDue = this.ranges.earliestDeadline();
      if (rangeDue < fixedDue) {
        if (rangeDue > now) {
          this.earliestDeadline = rangeDue;
          return;
        }
        this.ranges.expireEarliest(rangeDue);
        continue;
      }
      if (fixedDue > now || attempt === undefined) {
        this.earliestDeadline = fixedDue;
        return;
      }
      queue!.shift();
      this.end(attempt);
      this.counters.timeouts++;
      this.emit({ type: 'timeout', time: attempt.deadline, door: attempt.door.config, ip: attempt.ip, stage: attempt.stage });
      this.recycle(attempt);
    }
  }

  /** Earliest pending deadline (ms), or null. */
  nextDeadline(): number | null {
    const deadline = Math.min(this.earliestQueue()?.peek()!.deadline ?? Infinity, this.ranges.earliestDeadline());
    this.earliestDeadline = deadline;
    return deadline === Infinity ? null : deadline;
  }

  /**
   * Replaces the doors. A door whose matching settings (name, sequence, one-time file and its current line,
   * flags, target, Allow_From, timeout, Ignore_Repeats) are unchanged keeps its attempts; other attempts are
   * dropped silently. One-time files are read again (knockd does the same on SIGHUP).
   */
  reload(configs: readonly DoorConfig[]): void {
    const reusable = new Map<string, Door[]>();
    for (const door of this.doors) pushTo(reusable, doorIdentity(door.config, door.sequence), door);
    this.ranges.reload(configs);
    this.doors = configs.filter((config) => !isRangeDoor(config)).map((config) => {
      const sequences = this.loadSequences(config);
      const reused = reusable.get(doorIdentity(config, sequences[0] ?? []))?.shift();
      if (reused === undefined) return new Door(config, sequences, this.options.isLocal, this.queueFor(config.seqTimeout * 1000));
      reused.config = config;
      reused.setSequence(sequences[0] ?? [], sequences);
      return reused;
    });
    const kept = new Set(this.doors);
    this.dropAttempts((attempt) => !kept.has(attempt.door));
    for (const [timeoutMs, queue] of this.queues) {
      if (queue.pending === 0 && !this.doors.some((door) => door.timeoutMs === timeoutMs)) this.queues.delete(timeoutMs);
    }
    this.rebuildTables();
  }

  /**
   * Every sequence an enabled door accepts now or can move to without a reload (each unused line of a one-time
   * file), for the inputs' pre-filters: built at load and reload, it stays valid while one-time doors move on.
   */
  watch(): Watch {
    const sequences: DoorSequence[] = [];
    for (const door of this.doors) {
      if (door.enabled) for (const sequence of door.upcoming) sequences.push({ door: door.config, sequence });
    }
    const ranges: DoorRange[] = this.ranges.all.map((door) => ({ door: door.config, ranges: door.ranges }));
    return new Watch(sequences, ranges);
  }

  /**
   * What `knocktail status` shows: counts, and the `listed` oldest attempts in progress (oldest first), never a
   * list of every attempt (a flood holds MaxSources of them).
   */
  summary(listed = 1): MatcherSummary {
    let count = 0;
    const oldest: AttemptSnapshot[] = [];
    for (const first of this.sources) {
      for (let attempt: Attempt | null = first; attempt !== null; attempt = attempt.next) {
        count++;
        if (oldest.length < listed || attempt.started < oldest[oldest.length - 1]!.started) keepOldest(oldest, describeAttempt(attempt), listed);
      }
    }
    // A source knocking on several range doors counts once per door.
    let sources = this.sources.size;
    for (const door of this.ranges.all) {
      const progress = door.progress();
      count += progress.attempts;
      sources += progress.sources;
      if (progress.oldest !== null) keepOldest(oldest, progress.oldest, listed);
    }
    return { attempts: count, sources, inProgress: oldest, counters: { ...this.counters } };
  }

  /** A hit on a port some range door may watch: each door that admits it gets it. Returns whether one did. */
  private rangeKnock(hit: KnockHit, key: number): boolean {
    const doors = this.ranges.at(key);
    if (doors === undefined) return false;
    let seen = false;
    for (const door of doors) {
      if (!door.admits(hit)) continue;
      seen = true;
      this.rangeHit = hit;
      try {
        door.knock(hit);
      } finally {
        this.rangeHit = null;
      }
      const deadline = door.nextDeadline();
      if (deadline !== null && deadline < this.earliestDeadline) this.earliestDeadline = deadline;
    }
    return seen;
  }

  /** What range doors report, counted as the matcher's own events are. */
  private readonly rangeEvent = (event: MatchEvent): void => {
    if (event.type === 'stage') this.counters.stages++;
    else if (event.type === 'open') {
      this.counters.opens++;
      // A range door keys its sources by Knock_Scope itself (scope.ts); its open acts on the firewall of the last knock.
      const firewall = this.rangeHit?.firewall;
      if (firewall !== undefined) event = { ...event, firewall };
    }
    else if (event.type === 'timeout') this.counters.timeouts++;
    else if (event.type === 'evicted') this.counters.evicted += event.count;
    else if (event.type === 'refused') this.counters.refused++;
    this.emit(event);
  };

  /**
   * Matching step 2 (docs/design.md): the hit continues, ignores or fails each of the source's attempts whose door accepts
   * the destination. Returns false when there is none; only then may the hit start new attempts.
   */
  private continueKnocks(first: Attempt, hit: KnockHit, key: number): boolean {
    const attempts: Attempt[] = [];
    for (let attempt: Attempt | null = first; attempt !== null; attempt = attempt.next) {
      if (attempt.door.acceptsDestination(hit.dst)) attempts.push(attempt);
    }
    if (attempts.length === 0) return false;
    for (const attempt of attempts) {
      const door = attempt.door;
      if (!door.matchesFlags(hit)) continue;
      if (door.stepKeys[attempt.stage] === key) this.advance(attempt, hit.time, hit.firewall);
      else if (!(door.config.ignoreRepeats && door.stepKeys[attempt.stage - 1] === key)) this.discard(attempt);
    }
    return true;
  }

  /** Matching step 3 (docs/design.md): every door whose first step this is starts an attempt (a one-step door opens at once). */
  private startKnocks(sourceKnown: boolean, hit: KnockHit, key: number, lookupKey: SourceKey, scope: KnockScope | null): void {
    const doors = this.starters.get(key);
    if (doors === undefined) return;
    let stored = sourceKnown;
    let source: SourceKey | null = null;
    for (const door of doors) {
      if (!door.admits(hit) || (scope !== null && door.config.knockScope !== scope)) continue;
      if (door.sequence.length === 1) {
        this.reachStage(door, hit.src, 1, hit.time);
        // What an open carries is kept while its stop is pending: a copy, not a slice of the log text.
        this.open(door, detachedCopy(hit.src), hit.time, hit.firewall);
        continue;
      }
      if (!stored) this.makeRoom(hit.time);
      stored = true;
      source ??= storedSourceKey(lookupKey);
      const attempt = this.newAttempt(door, source, hit.time);
      this.sources.add(attempt);
      door.queue.push(attempt);
      if (attempt.deadline < this.earliestDeadline) this.earliestDeadline = attempt.deadline;
      this.reachStage(door, hit.src, 1, hit.time);
    }
  }

  private advance(attempt: Attempt, time: number, firewall: string | undefined): void {
    const door = attempt.door;
    attempt.stage++;
    this.reachStage(door, attempt.ip, attempt.stage, time);
    if (attempt.stage === door.sequence.length) {
      this.discard(attempt);
      this.open(door, attempt.ip, time, firewall);
    } else if (attempt.stage === 2) {
      this.sources.promote(attempt.source);
    }
  }

  private reachStage(door: Door, ip: string, stage: number, time: number): void {
    this.counters.stages++;
    this.emit({ type: 'stage', time, door: door.config, ip, stage });
  }

  private open(door: Door, ip: string, time: number, firewall: string | undefined): void {
    this.counters.opens++;
    const path = door.config.oneTimeSequences;
    // The used line is marked before the open is reported and its commands run: a crash in between never leaves a
    // used sequence usable again.
    const marked = path === null ? null : this.markUsed(door, path);
    this.emit(firewall === undefined ? { type: 'open', time, door: door.config, ip } : { type: 'open', time, door: door.config, ip, firewall });
    if (marked !== null) this.moveOn(door, marked, time);
  }

  /** Before a new source's first attempt: at the cap, the oldest source (fresh ones first) goes. */
  private makeRoom(time: number): void {
    if (this.sources.size < this.options.maxSources) return;
    const victim = this.sources.evict();
    if (victim === undefined) return;
    for (let attempt: Attempt | null = victim; attempt !== null; attempt = attempt.next) {
      attempt.live = false;
      attempt.door.queue.noteEnded();
    }
    this.counters.evicted++;
    this.emit({ type: 'evicted', time, ip: victim.ip, count: 1 });
  }

  private newAttempt(door: Door, source: SourceKey, started: number): Attempt {
    const attempt = this.spare.pop();
    if (attempt === undefined) return new Attempt(door, source, started);
    attempt.reuse(door, source, started);
    return attempt;
  }

  /** Keeps an ended attempt that its queue let go of (or shifted) for reuse; a few thousand are plenty. */
  private readonly recycle = (attempt: Attempt): void => {
    if (this.spare.length < SPARE_ATTEMPTS) this.spare.push(attempt);
  };

  /** Ends an attempt that is still queued (completed, failed or dropped). */
  private discard(attempt: Attempt): void {
    this.end(attempt);
    attempt.door.queue.noteEnded();
  }

  private end(attempt: Attempt): void {
    attempt.live = false;
    this.sources.remove(attempt);
  }

  /** Ends every attempt in progress without a timeout event (the clock stepped back: their times mean nothing now); returns how many. */
  abandonAll(): number {
    let count = 0;
    this.dropAttempts(() => {
      count++;
      return true;
    });
    for (const door of this.ranges.all) count += door.abandonAll();
    this.earliestDeadline = Infinity;
    return count;
  }

  /** O(sources); only on reload and when a one-time door changes its sequence. */
  private dropAttempts(shouldDrop: (attempt: Attempt) => boolean): void {
    for (const first of this.sources) {
      for (let attempt: Attempt | null = first; attempt !== null; ) {
        const next: Attempt | null = attempt.next;
        if (shouldDrop(attempt)) this.discard(attempt);
        attempt = next;
      }
    }
  }

  /** Marks a one-time door's used sequence in its file: the new scan, or why it could not be marked. */
  private markUsed(door: Door, path: string): OneTimeScan | { error: string } {
    try {
      return this.options.oneTimeFiles.markUsed(path, door.sequence);
    } catch (error) {
      return {
        error:
          `${path}: cannot mark the used sequence ${formatSequence(door.sequence)} (${errorText(error)}); ` +
          `door [${door.config.name}] is disabled so that it cannot be used again: make the file and its directory writable, then reload`,
      };
    }
  }

  /** After a success on a one-time door: move to its next unused line, or disable it (used up, or not markable). */
  private moveOn(door: Door, marked: OneTimeScan | { error: string }, time: number): void {
    if ('error' in marked) {
      this.warn(marked.error);
      this.disable(door, time, marked.error);
      return;
    }
    this.report(marked);
    const next = marked.unused[0];
    if (next === undefined) {
      this.disable(door, time);
      return;
    }
    // Attempts by other sources were knocking the used sequence: no stage carries over (a knockd bug).
    this.dropAttempts((attempt) => attempt.door === door);
    door.setSequence(next.sequence, marked.unused.map((line) => line.sequence));
    this.rebuildTables();
    this.emit({ type: 'sequence', time, door: door.config, sequence: next.sequence });
  }


  private disable(door: Door, time: number, error?: string): void {
    door.enabled = false;
    door.setSequence([], []);
    this.dropAttempts((attempt) => attempt.door === door);
    this.rebuildTables();
    this.emit(error === undefined ? { type: 'exhausted', time, door: door.config } : { type: 'exhausted', time, door: door.config, error });
  }

  /**
   * The sequences a door accepts at load, in order: its own, or every unused line of its one-time file, the first
   * being the current one ([] = disabled).
   */
  private loadSequences(config: DoorConfig): ReadonlyArray<readonly KnockStep[]> {
    const path = config.oneTimeSequences;
    if (path === null) return [config.sequence];
    let scan: OneTimeScan;
    try {
      scan = this.options.oneTimeFiles.load(path);
    } catch (error) {
      this.warn(`door [${config.name}] is disabled: ${errorText(error)}`);
      return [];
    }
    this.report(scan);
    if (scan.unused.length === 0) {
      this.warn(
        `${path}: no more sequences left in the one time sequences file for door [${config.name}] --> disabling the door; ` +
          'add sequences to the file, then reload',
      );
    }
    return scan.unused.map((line) => line.sequence);
  }

  /** Each problem of a one-time file once; a file of garbage gives a few and a count, not a line per line. */
  private report(scan: OneTimeScan): void {
    const fresh = scan.problems.filter((problem) => !this.reported.has(problem.message));
    for (const { item, more } of capRepeats(fresh, (problem) => messageKind(problem.message))) {
      this.warn(item.message);
      if (more > 0) this.warn(`${scan.path}: ${moreLikeThis(more)}`);
    }
    for (const problem of fresh) this.reported.add(problem.message);
  }

  private queueFor(timeoutMs: number): ExpiryQueue<Attempt> {
    let queue = this.queues.get(timeoutMs);
    if (queue === undefined) {
      queue = new ExpiryQueue<Attempt>(timeoutMs, this.recycle);
      this.queues.set(timeoutMs, queue);
    }
    return queue;
  }

  /** The queue whose next live attempt expires first (ties: the queue created first). */
  private earliestQueue(): ExpiryQueue<Attempt> | undefined {
    let best: ExpiryQueue<Attempt> | undefined;
    let bestDeadline = Infinity;
    for (const queue of this.queues.values()) {
      const head = queue.peek();
      if (head !== undefined && head.deadline < bestDeadline) {
        best = queue;
        bestDeadline = head.deadline;
      }
    }
    return best;
  }

  private rebuildTables(): void {
    this.scopes = scopesInUse(this.doors);
    this.watchers = new Map();
    this.starters = new Map();
    for (const door of this.doors) {
      if (!door.enabled) continue;
      for (const key of new Set(door.stepKeys)) pushTo(this.watchers, key, door);
      pushTo(this.starters, door.stepKeys[0]!, door);
    }
    const shared = [...this.watchers.keys()].filter((key) => this.ranges.at(key) !== undefined);
    this.sharedKeys = shared.length === 0 ? null : new Set(shared);
  }
}

function describeAttempt(attempt: Attempt): AttemptSnapshot {
  const door = attempt.door;
  return { door: door.config.name, ip: attempt.ip, stage: attempt.stage, of: door.sequence.length, started: attempt.started, deadline: attempt.deadline };
}

/** Inserts `attempt` into `oldest` (sorted by start, oldest first), keeping at most `limit`. */
function keepOldest(oldest: AttemptSnapshot[], attempt: AttemptSnapshot, limit: number): void {
  let at = oldest.length;
  while (at > 0 && oldest[at - 1]!.started > attempt.started) at--;
  oldest.splice(at, 0, attempt);
  if (oldest.length > limit) oldest.pop();
}

function anyAdmits(doors: readonly Door[], hit: KnockHit): boolean {
  for (const door of doors) if (door.admits(hit)) return true;
  return false;
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
