/**
 * Deadlines of one Seq_Timeout value. Attempts are created in (almost) time order, so they go into a FIFO
 * that is sorted by construction: expiring is popping its head, O(1). An attempt whose deadline is earlier
 * than the FIFO's tail (an out-of-order hit time: two inputs, a replay of several files) goes into a
 * min-heap instead, O(log n), so disorder of any size keeps deadlines exact and cheap.
 * Attempts that end early (completed, failed, evicted) are deleted lazily; both are compacted when such
 * attempts make up half of them, so a flood of evicted attempts cannot pile up here.
 */

export interface Expiring {
  readonly deadline: number;
  /** False once the item ended some other way; the queue then skips it. */
  readonly live: boolean;
}

const COMPACT_MIN = 1024;

export class ExpiryQueue<T extends Expiring> {
  private fifo: T[] = [];
  private head = 0;
  /** Binary min-heap by deadline. */
  private late: T[] = [];
  /** Queued items that are no longer live. */
  private dead = 0;

  constructor(readonly timeoutMs: number) {}

  /** Live items still queued. */
  get pending(): number {
    return this.fifo.length - this.head + this.late.length - this.dead;
  }

  push(item: T): void {
    const fifo = this.fifo;
    if (fifo.length === this.head || fifo[fifo.length - 1]!.deadline <= item.deadline) fifo.push(item);
    else this.heapPush(item);
  }

  /** The live item with the earliest deadline, or undefined. */
  peek(): T | undefined {
    const fifo = this.fifo;
    while (this.head < fifo.length && !fifo[this.head]!.live) {
      this.head++;
      this.dead--;
    }
    while (this.late.length > 0 && !this.late[0]!.live) {
      this.heapPop();
      this.dead--;
    }
    const first = fifo[this.head];
    const late = this.late[0];
    if (late === undefined) return first;
    return first === undefined || late.deadline < first.deadline ? late : first;
  }

  /** Removes the item `peek()` just returned. */
  shift(): void {
    const first = this.fifo[this.head];
    const late = this.late[0];
    if (late !== undefined && (first === undefined || late.deadline < first.deadline)) {
      this.heapPop();
      return;
    }
    this.head++;
    if (this.head >= COMPACT_MIN && this.head * 2 >= this.fifo.length) {
      this.fifo = this.fifo.slice(this.head);
      this.head = 0;
    }
  }

  /** Tells the queue that one of its items stopped being live without being shifted. */
  noteEnded(): void {
    this.dead++;
    if (this.dead >= COMPACT_MIN && this.dead * 2 >= this.fifo.length - this.head + this.late.length) this.compact();
  }

  private compact(): void {
    const fifo: T[] = [];
    for (let i = this.head; i < this.fifo.length; i++) if (this.fifo[i]!.live) fifo.push(this.fifo[i]!);
    this.fifo = fifo;
    this.head = 0;
    const late = this.late.filter((item) => item.live);
    this.late = [];
    for (const item of late) this.heapPush(item);
    this.dead = 0;
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
