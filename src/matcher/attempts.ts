/**
 * Knocks in progress: one Attempt per (source, door), found by source address, with a hard cap on sources.
 *
 * Memory is what a spoofed flood costs, so there is no per-source object: a source is the chain of its
 * attempts (creation order, linked by `next`), and the map's value is the first one.
 */
import type { Door } from './door.js';

export class Attempt {
  /** Steps matched so far (>= 1 while stored). */
  stage = 1;
  /** False once it completed, failed, expired or was dropped; expiry queues skip it then. */
  live = true;
  /** The same source's next attempt. */
  next: Attempt | null = null;

  constructor(
    readonly door: Door,
    readonly ip: string,
    /** Time of the first knock: the timeout counts from here. */
    readonly started: number,
  ) {}

  /** Computed, not stored: one number less per attempt. */
  get deadline(): number {
    return this.started + this.door.timeoutMs;
  }
}

/**
 * Sources in two insertion-ordered maps: `fresh` (every attempt still at stage 1 — what a spoofed flood
 * of first knocks creates) and `progressed` (some attempt got further, at which point the source moves
 * there). Eviction takes the oldest fresh source, else the oldest progressed one.
 */
export class SourceTable {
  private readonly fresh = new OldestFirstMap();
  private readonly progressed = new OldestFirstMap();

  get size(): number {
    return this.fresh.size + this.progressed.size;
  }

  /** The source's first attempt (follow `next` for the others), or undefined when it has none. */
  first(ip: string): Attempt | undefined {
    return this.fresh.get(ip) ?? this.progressed.get(ip);
  }

  /** Appends an attempt; a new source starts as fresh (the caller makes room first). */
  add(attempt: Attempt): void {
    const first = this.first(attempt.ip);
    if (first === undefined) {
      this.fresh.set(attempt.ip, attempt);
      return;
    }
    let last = first;
    while (last.next !== null) last = last.next;
    last.next = attempt;
  }

  /** Unlinks a stored attempt; a source without attempts is forgotten. */
  remove(attempt: Attempt): void {
    const ip = attempt.ip;
    const map = this.fresh.get(ip) !== undefined ? this.fresh : this.progressed;
    const first = map.get(ip)!;
    if (first === attempt) {
      if (attempt.next === null) map.delete(ip);
      else map.set(ip, attempt.next);
    } else {
      let previous = first;
      while (previous.next !== attempt) previous = previous.next!;
      previous.next = attempt.next;
    }
  }

  /** Marks the source as having made progress (no-op when it already has). */
  promote(ip: string): void {
    const first = this.fresh.get(ip);
    if (first === undefined) return;
    this.fresh.delete(ip);
    this.progressed.set(ip, first);
  }

  /** Removes the source to evict and returns its first attempt, or undefined when there is none. */
  evict(): Attempt | undefined {
    return this.fresh.shiftOldest() ?? this.progressed.shiftOldest();
  }

  /** First attempt of every source. Removing attempts meanwhile is safe (Map iteration semantics). */
  *[Symbol.iterator](): IterableIterator<Attempt> {
    yield* this.fresh.values();
    yield* this.progressed.values();
  }
}

/**
 * A Map that also removes its oldest entry in O(1). A plain Map's `keys().next()` walks over every deleted
 * slot at the front (1,000,000 FIFO evictions took minutes); a long-lived iterator stays past them.
 * Invariant: everything the cursor returned has been deleted.
 */
class OldestFirstMap {
  private readonly map = new Map<string, Attempt>();
  private cursor = this.map.values();

  get size(): number {
    return this.map.size;
  }

  get(ip: string): Attempt | undefined {
    return this.map.get(ip);
  }

  /** A new key becomes the newest entry; an existing key keeps its place. */
  set(ip: string, first: Attempt): void {
    this.map.set(ip, first);
  }

  delete(ip: string): void {
    this.map.delete(ip);
  }

  shiftOldest(): Attempt | undefined {
    if (this.map.size === 0) return undefined;
    let next = this.cursor.next();
    // An iterator that once reported done stays done, even after new entries.
    if (next.done) {
      this.cursor = this.map.values();
      next = this.cursor.next();
    }
    const first = next.value as Attempt;
    this.map.delete(first.ip);
    return first;
  }

  values(): IterableIterator<Attempt> {
    return this.map.values();
  }
}
