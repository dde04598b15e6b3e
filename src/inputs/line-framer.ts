/**
 * How bytes become log lines, for every log input: the follower (live) and the archive reader (replay and
 * test-format) frame with this one class, so the same file gives the same lines live and in replay by
 * construction. Lines end at `\n` (a `\r` before it is the decoder's to drop); bytes are split, never decoded
 * text, so a UTF-8 character cut by a read boundary is never decoded in halves; a line longer than MaxLineLength
 * bytes is skipped unread; a run of NUL bytes where a line should start (the hole a writer without O_APPEND leaves
 * after a copytruncate) is skipped.
 *
 * Whole lines are handed on in blocks: plain ASCII, by far the usual log, as one latin1 string of many lines (the
 * decoder finds the port marker in one pass over it), other text line by line.
 */
import { isAscii } from 'node:buffer';

/** Receives framed lines, in order. */
export interface LineSink {
  /**
   * ASCII lines, `\n`-separated, without the final newline; `text[i]` is the input's byte `base + i`. No line in
   * it is longer than MaxLineLength.
   */
  block(text: string, base: number): void;
  /** One line that is not ASCII (decoded as UTF-8); `end` is the input's offset just past its newline. */
  line(text: string, end: number): void;
  /** A line longer than MaxLineLength began at byte `at`; it is skipped unread. */
  longLine(at: number): void;
}

const NEWLINE = 0x0a;
/**
 * Bytes of lines decoded into one string at a time: small enough to stay in V8's young generation (a 1 MB string
 * goes straight to the old one, and hundreds of them per million lines make full collections the main cost).
 */
const BLOCK_BYTES = 64 * 1024;

export class LineFramer {
  /** Inside a line over MaxLineLength: everything up to its newline is dropped (a follower's cursor keeps it). */
  skipping: boolean;
  /** Stream use (push): the start of a line whose newline has not arrived yet. */
  private carry: Buffer | null = null;
  private carryBase = 0;
  /** The most bytes a block may span: no line of it can then be longer than MaxLineLength. */
  private readonly blockLimit: number;

  constructor(
    private readonly maxLineLength: number,
    skipping = false,
  ) {
    this.skipping = skipping;
    if (!Number.isSafeInteger(maxLineLength) || maxLineLength < 1) throw new RangeError(`maxLineLength must be a positive integer, not ${maxLineLength}`);
    this.blockLimit = Math.min(BLOCK_BYTES, maxLineLength);
  }

  /**
   * Frames the whole lines of `bytes` (the input's bytes from offset `base`) and returns how many bytes were
   * handled: up to the last newline, or to the end while an over-long line is skipped. The rest is the start of
   * a line to offer again once more bytes have arrived (the follower reads it again from the file).
   */
  frame(bytes: Buffer, base: number, sink: LineSink): number {
    let start = 0;
    const length = bytes.length;
    if (this.skipping) {
      const newline = bytes.indexOf(NEWLINE);
      if (newline < 0) return length;
      this.skipping = false;
      start = newline + 1;
    }
    while (start < length) {
      if (bytes[start] === 0) {
        while (start < length && bytes[start] === 0) start++;
        continue;
      }
      const limit = start + this.blockLimit;
      let end = limit >= length ? bytes.lastIndexOf(NEWLINE) : bytes.lastIndexOf(NEWLINE, limit);
      if (end < start) {
        // No newline within the block limit: one line at least that long.
        end = bytes.indexOf(NEWLINE, start);
        if (end - start > this.maxLineLength || (end < 0 && length - start > this.maxLineLength)) {
          sink.longLine(base + start);
          if (end < 0) {
            this.skipping = true;
            return length;
          }
          start = end + 1;
          continue;
        }
        if (end < 0) return start;
      }
      this.deliver(bytes, start, end, base, sink);
      start = end + 1;
    }
    return start;
  }

  /** Stream use: frames the next chunk, keeping the start of an unfinished line for the next one. */
  push(chunk: Buffer, sink: LineSink): void {
    let bytes = chunk;
    let base = this.carryBase;
    if (this.carry !== null) {
      // Only the carried line and the rest of it are joined, not the whole chunk.
      const newline = chunk.indexOf(NEWLINE);
      const head = Buffer.concat([this.carry, newline < 0 ? chunk : chunk.subarray(0, newline + 1)]);
      const used = this.frame(head, base, sink);
      this.carry = null;
      if (newline < 0) {
        this.keep(head, used, base);
        return;
      }
      base += head.length;
      bytes = chunk.subarray(newline + 1);
    }
    this.keep(bytes, this.frame(bytes, base, sink), base);
  }

  /** Stream use: whether the start of a line waits for its newline (at a cut-off end, that line is incomplete). */
  get partialLine(): boolean {
    return this.carry !== null;
  }

  /** Stream use: the input ended; a last line without a newline is a line too. */
  end(sink: LineSink): void {
    if (this.carry === null) return;
    const last = Buffer.concat([this.carry, Buffer.from([NEWLINE])]);
    this.carry = null;
    this.frame(last, this.carryBase, sink);
  }

  private keep(bytes: Buffer, used: number, base: number): void {
    this.carry = used < bytes.length ? bytes.subarray(used) : null;
    this.carryBase = base + used;
  }

  /** Lines [start, end) of `bytes`, `end` a newline: one ASCII block, or line by line. */
  private deliver(bytes: Buffer, start: number, end: number, base: number, sink: LineSink): void {
    const block = bytes.subarray(start, end);
    if (isAscii(block)) {
      sink.block(block.toString('latin1'), base + start);
      return;
    }
    for (let from = start; from <= end; ) {
      let newline = bytes.indexOf(NEWLINE, from);
      if (newline < 0 || newline > end) newline = end;
      const stop = newline > from && bytes[newline - 1] === 0x0d ? newline - 1 : newline;
      sink.line(bytes.toString('utf8', from, stop), base + newline + 1);
      from = newline + 1;
    }
  }
}
