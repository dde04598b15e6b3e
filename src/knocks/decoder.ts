/**
 * The daemon side of encrypted knocks for one door: span values per source in, decoded messages and
 * refusals out (docs/encrypted-knocks.md, "Decoding"). Pure with respect to time (times come with the
 * knocks and with expire()), synchronous, and bounded: a source has state only after a knock that
 * matches one of the door's current sync values, and then at most a ring of recent knocks and a few
 * messages in progress; the number of such sources is capped.
 */
import type { DoorConfig } from '../config/types.js';
import type { Protocol } from '../hit.js';
import { detachedCopy } from '../address.js';
import { ADDRESS_KINDS, CHECK_BITS, checkOf, firstCheckState, nextCheckState, dataKnocks, deriveDoorKeys, type DoorKeys, type KnockRequest, MAX_WINDOW_SECONDS, openMessage, type OpenedMessage, SLOT_SECONDS, slotPattern, type SlotPattern } from './format.js';
import { UnrecordedUseError, type UsedKnocks } from './used.js';
import { PortSpan } from './span.js';

/** Sync knocks with messages in progress per source; a new sync knock beyond them replaces the newest (an older one has come further). */
const MAX_MESSAGES_PER_SOURCE = 4;
/** Authentication attempts one knock may cause (over all messages in progress of its source), and one message in progress in all. */
export const ATTEMPTS_PER_KNOCK = 4;
const ATTEMPTS_PER_MESSAGE = 16;
/** Steps of the search for the knocks of one message among a source's recent knocks, per knock. */
const SEARCH_STEPS_PER_KNOCK = 4096;
/** Knocks kept beyond the longest message: that many strays can be interleaved. */
const SPARE_KNOCKS = 32;
const SLOT_MS = SLOT_SECONDS * 1000;
/** A message is remembered as used for this long either side of its timestamp: no door's Knock_Window reaches further. */
const USE_WINDOW_MS = MAX_WINDOW_SECONDS * 1000;
const CHECK_MASK = (1 << CHECK_BITS) - 1;

export type RefusalReason =
  /** Complete sequences followed the sync knock, but none authenticated (forged, tampered, wrong key or door, or bound to another address). */
  | 'auth'
  /** Too few knocks followed the sync knock within Seq_Timeout (a lost knock, or a sync value hit by chance). */
  | 'incomplete'
  /** The message's timestamp is further than Knock_Window from the knock's time. */
  | 'window'
  | 'port'
  | 'duration'
  /** The message names another address than the knocks came from, and Trust_Knock_IP is no. */
  | 'address'
  /** The message was used before. */
  | 'replay'
  /** The message could not be recorded as used (so it may not open). */
  | 'unrecorded'
  /** Authentic but not well-formed (a client bug). */
  | 'malformed'
  /** Dropped to keep the number of sources with messages in progress within the cap. */
  | 'evicted';

export type KnockOutcome =
  | {
      type: 'open';
      /** Time of the knock that completed the message (ms). */
      time: number;
      source: string;
      /** The address to open for: the message's when Trust_Knock_IP allows it, else the source. */
      openFor: string;
      request: KnockRequest;
      /** The message's own timestamp (ms). */
      messageTime: number;
      id: string;
    }
  | { type: 'refused'; time: number; source: string; reason: RefusalReason; detail: string; request: KnockRequest | null };

/** Everything a door's decoder needs, worked out once at load. */
export interface EncryptedDoorSpec {
  /** The door's name: the scope of its used messages. */
  name: string;
  keys: DoorKeys;
  span: PortSpan;
  allowsPort: (port: number) => boolean;
  maxDuration: number;
  windowMs: number;
  trustKnockIp: boolean;
  /** Seq_Timeout: all knocks of a message arrive within it after the sync knock. */
  timeoutMs: number;
}

export function encryptedDoorSpec(door: DoorConfig): EncryptedDoorSpec {
  const encrypted = door.encrypted;
  if (encrypted === null) throw new Error(`door [${door.name}] has no Knock_Key`);
  const allowed = encrypted.allowedPorts;
  return {
    name: door.name,
    keys: deriveDoorKeys(encrypted.key.key, door.name),
    span: new PortSpan(encrypted.span),
    allowsPort: (port) => allowed.some((range) => port >= range.first && port <= range.last),
    maxDuration: encrypted.maxDuration,
    windowMs: encrypted.window * 1000,
    trustKnockIp: encrypted.trustKnockIp,
    timeoutMs: door.seqTimeout * 1000,
  };
}

export interface DecoderCounters {
  /** Knocks handed to knock(). */
  knocks: number;
  /** Knocks that matched a current sync value. */
  syncs: number;
  /** Authentication attempts (AES-GCM opens). */
  attempts: number;
  opened: number;
  refused: number;
  /** Messages decoded a second time from knocks that arrived while the first copy was decoded (duplicated packets): dropped without a word. */
  duplicates: number;
}

/** A message in progress: a sync knock seen, its data knocks awaited. */
interface Pending {
  pattern: SlotPattern;
  source: string;
  state: SourceState;
  /** Absolute index (in the source's knocks) of the first knock after the sync. */
  from: number;
  deadline: number;
  attempts: number;
  /** False once decoded, refused, expired or evicted (it may still sit in the expiry queue). */
  live: boolean;
  /** Ids of the messages its source opened while this one was in progress: a copy of one of them is a duplicate, not a replay. */
  openedMeanwhile: string[] | null;
}

class SourceState {
  /** The source's recent span values, -1 once used by a message. */
  readonly ring: Int16Array;
  /** Knocks pushed so far (absolute index of the next one). */
  count = 0;
  readonly pending: Pending[] = [];

  constructor(
    capacity: number,
    /** The knocking address. */
    readonly address: string,
    /** Its key among the decoder's sources: the address, or the address and the firewall that logged its knocks. */
    readonly key: string,
  ) {
    this.ring = new Int16Array(capacity);
  }

  /** Absolute index of the oldest knock a pending message may still need. */
  get oldestNeeded(): number {
    return this.pending.length > 0 ? this.pending[0]!.from : this.count;
  }
}

/** What one knock may still spend on searching and opening. */
interface SearchBudget {
  steps: number;
  attempts: number;
}

const NO_OUTCOMES: readonly KnockOutcome[] = Object.freeze([]);

/** How many sync knocks started the messages in progress (`pending` is in start order). */
function startsOf(pending: readonly Pending[]): number {
  let starts = 0;
  for (let i = 0; i < pending.length; i++) if (i === 0 || pending[i]!.from !== pending[i - 1]!.from) starts++;
  return starts;
}

export class KnockDecoder {
  readonly counters: DecoderCounters = { knocks: 0, syncs: 0, attempts: 0, opened: 0, refused: 0, duplicates: 0 };

  private readonly sources = new Map<string, SourceState>();
  /** Pending messages in order of creation = deadline order (one Seq_Timeout for the door). */
  private queue: Pending[] = [];
  private queueHead = 0;
  /** Sync value → patterns of the slots a knock at a time in [tableFrom, tableUntil) may use. */
  private syncTable = new Map<number, SlotPattern[]>();
  private tableFrom = Infinity;
  private tableUntil = -Infinity;
  private readonly patterns = new Map<string, SlotPattern>();
  private readonly capacity: number;
  private readonly longest: number;
  /** Scratch space of the search: ring indices and symbols of one candidate. */
  private readonly path: Int32Array;
  private readonly symbols: Uint16Array;
  /** Check bits of the knock being tried as the last of a message. */
  private trigger = 0;

  constructor(
    readonly door: EncryptedDoorSpec,
    private readonly used: UsedKnocks,
    private readonly maxSources: number,
  ) {
    this.longest = Math.max(...ADDRESS_KINDS.map((kind) => dataKnocks(kind, door.span.bits)));
    this.capacity = this.longest + SPARE_KNOCKS;
    this.path = new Int32Array(this.longest);
    this.symbols = new Uint16Array(this.longest);
  }

  /** The span value of a knock, or -1 (then it is not this door's business). */
  valueOf(proto: Protocol, port: number): number {
    return this.door.span.valueOf(proto, port);
  }

  /** Sources with a message in progress. */
  get size(): number {
    return this.sources.size;
  }

  /**
   * One knock on the span: `value` from valueOf(), `time` in ms (never earlier than the previous knock's,
   * as the engine guarantees). `key` tells sources apart (default: the address; a collector's Knock_Scope = firewall
   * door adds the firewall). Returns the messages it completed or refused, usually none.
   */
  knock(source: string, value: number, time: number, key: string = source): readonly KnockOutcome[] {
    this.counters.knocks++;
    if (time < this.tableFrom || time >= this.tableUntil) this.refreshSyncTable(time);
    let state = this.sources.get(key);
    // The path of nearly every knock of a flood: nothing in progress, not a sync value.
    if (state === undefined && !this.syncTable.has(value)) return NO_OUTCOMES;
    // Kept from here on: not a slice of the log line it may come from.
    const keyIsSource = key === source;
    source = detachedCopy(source);
    key = keyIsSource ? source : detachedCopy(key);
    let outcomes = NO_OUTCOMES as KnockOutcome[];
    const emit = (outcome: KnockOutcome): void => {
      if (outcomes === NO_OUTCOMES) outcomes = [];
      outcomes.push(outcome);
      this.counters[outcome.type === 'open' ? 'opened' : 'refused']++;
    };
    let used = false;
    if (state !== undefined) {
      for (const pending of [...state.pending]) {
        if (pending.deadline <= time) this.end(pending, this.timedOut(pending, pending.deadline), emit);
      }
      const budget = { steps: SEARCH_STEPS_PER_KNOCK, attempts: ATTEMPTS_PER_KNOCK };
      for (const pending of [...state.pending]) {
        used = this.complete(pending, value, time, budget, emit);
        if (used || budget.attempts <= 0) break;
      }
    }
    const patterns = this.syncTable.get(value);
    state ??= this.addSource(source, key, time, emit);
    if (!used && state.pending.length > 0) this.push(state, value, time, emit);
    if (patterns !== undefined && !used) {
      for (const pattern of patterns) this.start(source, state, pattern, time, emit);
    }
    if (state.pending.length === 0) this.sources.delete(key);
    return outcomes;
  }

  /** Ends the messages in progress whose Seq_Timeout passed by `now` (ms). */
  expire(now: number): KnockOutcome[] {
    const outcomes: KnockOutcome[] = [];
    const emit = (outcome: KnockOutcome): void => {
      outcomes.push(outcome);
      this.counters.refused++;
    };
    for (let pending = this.peek(); pending !== undefined && pending.deadline <= now; pending = this.peek()) {
      this.queueHead++;
      this.end(pending, this.timedOut(pending, pending.deadline), emit);
    }
    return outcomes;
  }

  /** When expire() next has something to do (ms), or null. */
  nextDeadline(): number | null {
    return this.peek()?.deadline ?? null;
  }

  /** The oldest live pending message, dropping dead ones from the queue. */
  private peek(): Pending | undefined {
    while (this.queueHead < this.queue.length && !this.queue[this.queueHead]!.live) this.queueHead++;
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    return this.queue[this.queueHead];
  }

  private addSource(source: string, key: string, time: number, emit: (outcome: KnockOutcome) => void): SourceState {
    if (this.sources.size >= this.maxSources) {
      const oldest = this.sources.values().next().value as SourceState;
      for (const pending of [...oldest.pending]) this.end(pending, null, () => {});
      this.sources.delete(oldest.key);
      emit({ type: 'refused', time, source: oldest.address, reason: 'evicted', detail: `dropped its message in progress: more than ${this.maxSources} sources had one`, request: null });
    }
    const state = new SourceState(this.capacity, source, key);
    this.sources.set(key, state);
    return state;
  }

  private start(source: string, state: SourceState, pattern: SlotPattern, time: number, emit: (outcome: KnockOutcome) => void): void {
    this.counters.syncs++;
    // Readings of one sync knock (a value several slots or kinds share) count as one message: only one can be real.
    const list = state.pending;
    if (list.at(-1)?.from !== state.count && startsOf(list) >= MAX_MESSAGES_PER_SOURCE) {
      // The newest goes, with its other readings: an older one has come further.
      const newest = list.at(-1)!.from;
      for (const other of list.filter((candidate) => candidate.from === newest)) this.end(other, this.timedOut(other, time, 'a newer message started'), emit);
    }
    const pending: Pending = { pattern, source, state, from: state.count, deadline: time + this.door.timeoutMs, attempts: 0, live: true, openedMeanwhile: null };
    state.pending.push(pending);
    this.queue.push(pending);
    // Most recently started last: the eviction order.
    this.sources.delete(state.key);
    this.sources.set(state.key, state);
  }

  /** Adds a knock to the source's ring, first dropping a message in progress that would lose its oldest knock. */
  private push(state: SourceState, value: number, time: number, emit: (outcome: KnockOutcome) => void): void {
    while (state.pending.length > 0 && state.count - state.oldestNeeded >= this.capacity) {
      this.end(state.pending[0]!, this.timedOut(state.pending[0]!, time, `more than ${this.capacity - this.longest} other knocks came in between`), emit);
    }
    state.ring[state.count % this.capacity] = value;
    state.count++;
  }

  /** Removes a message in progress and reports why (null: silently). */
  private end(pending: Pending, outcome: KnockOutcome | null, emit: (outcome: KnockOutcome) => void): void {
    if (!pending.live) return;
    pending.live = false;
    const list = pending.state.pending;
    list.splice(list.indexOf(pending), 1);
    if (list.length === 0 && this.sources.get(pending.state.key) === pending.state) this.sources.delete(pending.state.key);
    if (outcome !== null) emit(outcome);
  }

  private timedOut(pending: Pending, time: number, why = 'Seq_Timeout passed'): KnockOutcome {
    const { source, attempts } = pending;
    const needed = pending.pattern.length;
    const received = pending.state.count - pending.from;
    if (attempts > 0) {
      return { type: 'refused', time, source, reason: 'auth', detail: `${attempts} candidate message(s) failed authentication before ${why} (forged, tampered, another key or door, or sent without an address from behind NAT)`, request: null };
    }
    return { type: 'refused', time, source, reason: 'incomplete', detail: `${why} with ${Math.min(received, needed - 1)} of ${needed} data knocks after a sync knock`, request: null };
  }

  /**
   * `value` ends `pending` if some earlier knocks of the source, in order, carry the message's chained
   * check bits up to and including `value`'s, and the whole authenticates. Returns whether the knock
   * was used (a message decoded).
   */
  private complete(pending: Pending, value: number, time: number, budget: SearchBudget, emit: (outcome: KnockOutcome) => void): boolean {
    const { state, pattern } = pending;
    const need = pattern.length - 1;
    if (state.count - pending.from < need) return false;
    this.symbols[need] = value >> CHECK_BITS;
    this.trigger = value & CHECK_MASK;
    const opened = this.search(pending, 0, pending.from, firstCheckState(pattern), budget);
    if (opened !== null) {
      for (let j = 0; j < need; j++) state.ring[this.path[j]! % this.capacity] = -1;
      const outcome = this.judge(opened, pending, time);
      this.end(pending, outcome, emit);
      if (outcome?.type === 'open') for (const other of state.pending) (other.openedMeanwhile ??= []).push(outcome.id);
      // Its sync knock's other readings (a sync value several slots or kinds share), and messages started by a data
      // knock of this message that happened to equal a sync value, were nothing real.
      for (const other of [...state.pending]) {
        if (other.from === pending.from || (other.from - 1 >= pending.from && state.ring[(other.from - 1) % this.capacity] === -1)) this.end(other, null, emit);
      }
      return true;
    }
    if (pending.attempts >= ATTEMPTS_PER_MESSAGE) this.end(pending, this.timedOut(pending, time, `${ATTEMPTS_PER_MESSAGE} attempts`), emit);
    return false;
  }

  /** Depth-first: picks the j-th data knock (check chain at `chain`) at or after ring index `from`; earliest knocks first. */
  private search(pending: Pending, j: number, from: number, chain: number, budget: SearchBudget): OpenedMessage | null {
    const { state, pattern } = pending;
    const need = pattern.length - 1;
    const check = checkOf(chain);
    if (j === need) {
      if (this.trigger !== check || pending.attempts >= ATTEMPTS_PER_MESSAGE) return null;
      budget.attempts--;
      pending.attempts++;
      this.counters.attempts++;
      return openMessage(this.door.keys, pattern, this.symbols.subarray(0, need + 1), this.door.span.bits, pending.source);
    }
    for (let i = from; state.count - i >= need - j; i++) {
      if (--budget.steps < 0 || budget.attempts <= 0 || pending.attempts >= ATTEMPTS_PER_MESSAGE) return null;
      const knock = state.ring[i % this.capacity]!;
      if (knock < 0 || (knock & CHECK_MASK) !== check) continue;
      this.path[j] = i;
      this.symbols[j] = knock >> CHECK_BITS;
      const opened = this.search(pending, j + 1, i + 1, nextCheckState(chain, j + 1, this.symbols[j]!), budget);
      if (opened !== null) return opened;
    }
    return null;
  }

  /**
   * Checks an authentic message against the door, in this order, and claims it last (a refused message
   * stays unused). Null for a duplicate of a message this source just opened with.
   */
  private judge(message: OpenedMessage, pending: Pending, time: number): KnockOutcome | null {
    const { request, time: stamped, id } = message;
    const source = pending.source;
    const door = this.door;
    const refuse = (reason: RefusalReason, detail: string): KnockOutcome => ({ type: 'refused', time, source, reason, detail, request });
    if (stamped === null) return refuse('malformed', 'the time offset in the message is out of range');
    const skew = stamped * 1000 - time;
    if (Math.abs(skew) > door.windowMs) {
      return refuse('window', `the message is stamped ${new Date(stamped * 1000).toISOString()}, ${Math.round(Math.abs(skew) / 1000)} s ${skew < 0 ? 'before' : 'after'} the knock (Knock_Window ${door.windowMs / 1000} s)`);
    }
    if (!door.allowsPort(request.port)) return refuse('port', `it asks for port ${request.port}, which Allowed_Ports does not list`);
    if (request.duration < 1 || request.duration > door.maxDuration) return refuse('duration', `it asks for ${request.duration} s; Max_Duration is ${door.maxDuration} s`);
    if (request.address !== null && request.address !== source && !door.trustKnockIp) {
      return refuse('address', `it names ${request.address}, but the knocks came from ${source} (Trust_Knock_IP is no)`);
    }
    try {
      const stampedMs = stamped * 1000;
      const earlier = this.used.claim({ scope: door.name, id, usableFrom: stampedMs - USE_WINDOW_MS, keepUntil: stampedMs + USE_WINDOW_MS, use: { at: time, by: source } }, time);
      if (earlier !== null) {
        if (pending.openedMeanwhile?.includes(id)) {
          this.counters.duplicates++;
          return null;
        }
        return refuse('replay', `message ${id} was used already at ${new Date(earlier.at).toISOString()} from ${earlier.by}`);
      }
    } catch (error) {
      if (!(error instanceof UnrecordedUseError)) throw error;
      return refuse('unrecorded', error.message);
    }
    return { type: 'open', time, source, openFor: request.address !== null && door.trustKnockIp ? request.address : source, request, messageTime: stamped * 1000, id };
  }

  /** The sync values of every slot a message knocked at `time` may carry (those within Knock_Window). */
  private refreshSyncTable(time: number): void {
    const { windowMs, keys, span } = this.door;
    const low = Math.max(0, Math.floor((time - windowMs) / SLOT_MS));
    const high = Math.max(0, Math.floor((time + windowMs) / SLOT_MS));
    this.tableFrom = Math.max(low * SLOT_MS + windowMs, high * SLOT_MS - windowMs);
    this.tableUntil = Math.min((low + 1) * SLOT_MS + windowMs, (high + 1) * SLOT_MS - windowMs);
    this.syncTable = new Map();
    for (const [key, pattern] of this.patterns) if (pattern.slot < low || pattern.slot > high) this.patterns.delete(key);
    for (let slot = low; slot <= high; slot++) {
      for (const kind of ADDRESS_KINDS) {
        const key = `${slot} ${kind}`;
        let pattern = this.patterns.get(key);
        if (pattern === undefined) this.patterns.set(key, (pattern = slotPattern(keys, slot, kind, span.bits)));
        const list = this.syncTable.get(pattern.sync);
        if (list === undefined) this.syncTable.set(pattern.sync, [pattern]);
        else list.push(pattern);
      }
    }
  }
}
