/**
 * Deadlines of one Seq_Timeout value. Attempts are created in (almost) time order, so they go into a FIFO
 * that is sorted by construction: expiring is popping its head, O(1). An attempt whose deadline is earlier
 * than the FIFO's tail (an out-of-order hit time: two inputs, a replay of several files) goes into a
 * min-heap instead, O(log n), so disorder of any size keeps deadlines exact and cheap.
 * Attempts that end early (completed, failed, evicted) are deleted lazily, at once when they are at the front,
 * else by compacting when they make up half of what is queued, so a flood of evicted attempts cannot pile up
 * here. The FIFO is a ring that only grows: a flood pushes a million attempts through it without allocating.
 */

export interface Expiring {
  readonly deadline: number;
  /** False once the item ended some other way; the queue then skips it. */
  readonly live: boolean;
}

const COMPACT_MIN = 1024;
const INITIAL_RING = 64;

export class ExpiryQueue<T extends Expiring> {
  /** The FIFO: `count` items from `head` on, wrapping around; the length is a power of two. */
  private ring: Array<T | undefined> = new Array<T | undefined>(INITIAL_RING).fill(undefined);
  private head = 0;
  private count = 0;
  /** Binary min-heap by deadline. */
  private late: T[] = [];
  /** Queued items that are no longer live. */
  private dead = 0;

  /** `dropped` gets every item the queue lets go of after it ended early: the queue held its last reference. */
  constructor(
    readonly timeoutMs: number,
    private readonly dropped: (item: T) => void = () => undefined,
  ) {}

  /** Live items still queued. */
  get pending(): number {
    return this.count + this.late.length - this.dead;
  }

  push(item: T): void {
    const mask = this.ring.length - 1;
    if (this.count > 0 && this.ring[(this.head + this.count - 1) & mask]!.deadline > item.deadline) {
      this.heapPush(item);
      return;
    }
    if (this.count === this.ring.length) this.growRing();
    this.ring[(this.head + this.count) & (this.ring.length - 1)] = item;
    this.count++;
  }

  /** The live item with the earliest deadline, or undefined. */
  peek(): T | undefined {
    this.dropEndedHeads();
    const first = this.ring[this.head];
    const late = this.late[0];
    if (late === undefined) return first;
    return first === undefined || late.deadline < first.deadline ? late : first;
  }

  /** Removes the item `peek()` just returned. */
  shift(): void {
    const first = this.ring[this.head];
    const late = this.late[0];
    if (late !== undefined && (first === undefined || late.deadline < first.deadline)) {
      this.heapPop();
      return;
    }
    this.dropHead();
  }

  /** Removes the FIFO's head (its slot is cleared: the queue must not keep what it let go of). */
  private dropHead(): void {
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) & (this.ring.length - 1);
    this.count--;
  }

  private growRing(): void {
    const ring = new Array<T | undefined>(this.ring.length * 2).fill(undefined);
    for (let i = 0; i < this.count; i++) ring[i] = this.ring[(this.head + i) & (this.ring.length - 1)];
    this.ring = ring;
    this.head = 0;
  }

  /**
   * Tells the queue that one of its items stopped being live without being shifted. Ended items at the front
   * are let go of at once: an evicted attempt is usually the oldest, and its owner can reuse it right away.
   */
  noteEnded(): void {
    this.dead++;
    this.dropEndedHeads();
    if (this.dead >= COMPACT_MIN && this.dead * 2 >= this.count + this.late.length) this.compact();
  }

  private dropEndedHeads(): void {
    for (let item = this.ring[this.head]; item !== undefined && !item.live; item = this.ring[this.head]) {
      this.dropHead();
      this.dead--;
      this.dropped(item);
    }
    for (let item = this.late[0]; item !== undefined && !item.live; item = this.late[0]) {
      this.heapPop();
      this.dead--;
      this.dropped(item);
    }
  }

  private compact(): void {
    const ended: T[] = [];
    // In place: live items move towards the head, keeping their order.
    const mask = this.ring.length - 1;
    let kept = 0;
    for (let i = 0; i < this.count; i++) {
      const item = this.ring[(this.head + i) & mask]!;
      this.ring[(this.head + i) & mask] = undefined;
      if (item.live) this.ring[(this.head + kept++) & mask] = item;
      else ended.push(item);
    }
    this.count = kept;
    const late = this.late;
    this.late = [];
    for (const item of late) {
      if (item.live) this.heapPush(item);
      else ended.push(item);
    }
    this.dead = 0;
    for (const item of ended) this.dropped(item);
  }

  private heapPush(item: T): void {
    const heap = this.late;
    let index = heap.length;
    heap.push(item);
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (heap[parent]!.deadline <= item.deadline) break;
      heap[index] = heap[parent]!;
      index = parent;
    }
    heap[index] = item;
  }

  private heapPop(): void {
    const heap = this.late;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.deadline < heap[left]!.deadline ? right : left;
      if (heap[child]!.deadline >= last.deadline) break;
      heap[index] = heap[child]!;
      index = child;
    }
    heap[index] = last;
  }
}
