/**
 * Knocks in progress: one Attempt per (source, door), found by source address, with a hard cap on sources.
 *
 * Memory is what a spoofed flood costs, so there is no per-source object: a source is the chain of its
 * attempts (creation order, linked by `next`), the map's value is the first one, and the first attempt also
 * carries the source's place in its age list.
 */
import { AddressMap, type SourceKey } from './address-map.js';
import type { Door } from './door.js';
import { keyAddress } from './scope.js';

export class Attempt {
  /** Steps matched so far (>= 1 while stored). */
  stage = 1;
  /** False once it completed, failed, expired or was dropped; expiry queues skip it then. */
  live = true;
  /** The same source's next attempt. */
  next: Attempt | null = null;
  /** On a source's first attempt only: its neighbours in the age list (older = added before it). */
  older: Attempt | null = null;
  newer: Attempt | null = null;
  /** On a source's first attempt only: which age list the source is in. */
  progressed = false;

  constructor(
    public door: Door,
    /** The knocking address (a number for IPv4: no string is kept per source), or address and firewall (matcher/scope.ts). */
    public source: SourceKey,
    /** Time of the first knock: the timeout counts from here. */
    public started: number,
  ) {}

  /** The knocking address as canonical text (without the firewall of a Knock_Scope = firewall key), made when asked (events and status; the per-packet path uses `source`). */
  get ip(): string {
    return keyAddress(this.source);
  }

  /** Makes an ended attempt, which nothing refers to any more, a new one (see Matcher's spare attempts). */
  reuse(door: Door, source: SourceKey, started: number): void {
    this.door = door;
    this.source = source;
    this.started = started;
    this.stage = 1;
    this.live = true;
    this.next = null;
    this.older = null;
    this.newer = null;
    this.progressed = false;
  }

  /** Computed, not stored: one number less per attempt. */
  get deadline(): number {
    return this.started + this.door.timeoutMs;
  }
}

/**
 * Sources by address, and in two age lists: `fresh` (every attempt still at stage 1 — what a spoofed flood of
 * first knocks creates) and `progressed` (some attempt got further, at which point the source moves there).
 * Eviction takes the oldest fresh source, else the oldest progressed one. Every operation is O(1) apart from
 * walking one source's few attempts.
 *
 * The age order is kept in the attempts themselves, not in a Map's insertion order: a Map iterator kept to
 * find the oldest entry cheaply holds on to every table the Map has outgrown or shrunk from, with all the
 * attempts and addresses in them, until it is advanced again (a flood whose knocks expire before any eviction
 * grew the heap by hundreds of MB that way).
 */
export class SourceTable {
  private readonly firsts = new AddressMap<Attempt>();
  private readonly fresh = new AgeList();
  private readonly progressed = new AgeList();

  get size(): number {
    return this.firsts.size;
  }

  /** The source's first attempt (follow `next` for the others), or undefined when it has none. */
  first(source: SourceKey): Attempt | undefined {
    return this.firsts.get(source);
  }

  /** Appends an attempt; a new source starts as the newest fresh one (the caller makes room first). */
  add(attempt: Attempt): void {
    const first = this.firsts.get(attempt.source);
    if (first === undefined) {
      this.firsts.set(attempt.source, attempt);
      this.fresh.append(attempt);
      return;
    }
    let last = first;
    while (last.next !== null) last = last.next;
    last.next = attempt;
  }

  /** Unlinks a stored attempt; a source without attempts is forgotten. */
  remove(attempt: Attempt): void {
    const first = this.firsts.get(attempt.source)!;
    if (first !== attempt) {
      let previous = first;
      while (previous.next !== attempt) previous = previous.next!;
      previous.next = attempt.next;
      return;
    }
    const list = this.listOf(first);
    const successor = first.next;
    if (successor === null) {
      list.unlink(first);
      this.firsts.delete(first.source);
    } else {
      // The source keeps its age: its next attempt takes the first one's place in the list.
      successor.progressed = first.progressed;
      list.replace(first, successor);
      this.firsts.set(first.source, successor);
    }
  }

  /** Marks the source as having made progress (no-op when it already has). */
  promote(source: SourceKey): void {
    const first = this.firsts.get(source);
    if (first === undefined || first.progressed) return;
    this.fresh.unlink(first);
    first.progressed = true;
    this.progressed.append(first);
  }

  /** Removes the source to evict and returns its first attempt, or undefined when there is none. */
  evict(): Attempt | undefined {
    const victim = this.fresh.oldest ?? this.progressed.oldest;
    if (victim === null) return undefined;
    this.listOf(victim).unlink(victim);
    this.firsts.delete(victim.source);
    return victim;
  }

  /** First attempt of every source (O(sources), for reload and status). Removing attempts meanwhile is safe: it walks a copy. */
  [Symbol.iterator](): IterableIterator<Attempt> {
    return this.firsts.valuesCopy()[Symbol.iterator]();
  }

  private listOf(first: Attempt): AgeList {
    return first.progressed ? this.progressed : this.fresh;
  }
}

/** Sources oldest first, linked through their first attempts' `older`/`newer`. */
class AgeList {
  oldest: Attempt | null = null;
  private newest: Attempt | null = null;

  append(first: Attempt): void {
    first.older = this.newest;
    first.newer = null;
    if (this.newest === null) this.oldest = first;
    else this.newest.newer = first;
    this.newest = first;
  }

  unlink(first: Attempt): void {
    if (first.older === null) this.oldest = first.newer;
    else first.older.newer = first.newer;
    if (first.newer === null) this.newest = first.older;
    else first.newer.older = first.older;
    first.older = null;
    first.newer = null;
  }

  /** Puts `successor` where `first` is. */
  replace(first: Attempt, successor: Attempt): void {
    successor.older = first.older;
    successor.newer = first.newer;
    if (first.older === null) this.oldest = successor;
    else first.older.newer = successor;
    if (first.newer === null) this.newest = successor;
    else first.newer.older = successor;
    first.older = null;
    first.newer = null;
  }
}
