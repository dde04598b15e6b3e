/**
 * One-time sequence files (`One_Time_Sequences`), without knockd's bugs.
 *
 * One sequence per line in `Sequence` syntax; lines are trimmed, blank and `#` lines skipped, an invalid
 * line is skipped. The door's sequence is the first valid line. Using it inserts a `#` in front of exactly
 * that line (knockd overwrote the first byte: `3001` became `#001`, and after an invalid line it marked the
 * wrong one) and replaces the file atomically; every other byte stays as it was (CRLF, a missing final
 * newline, comments, bytes that are not UTF-8).
 */
import { parseSequence, SequenceError } from '../config/sequence.js';
import type { KnockStep } from '../config/types.js';

/** A valid line that has not been used yet. */
export interface OneTimeLine {
  /** 1-based line number. */
  line: number;
  /** Byte offset of the line's first byte in the file. */
  offset: number;
  sequence: KnockStep[];
}

/** A line that is skipped, with why (a full `file:line: …` message). */
export interface OneTimeProblem {
  line: number;
  message: string;
}

export interface OneTimeScan {
  path: string;
  /** Valid unused lines in file order; the first one is the door's current sequence. */
  unused: OneTimeLine[];
  /** Invalid lines (skipped) and lines with ignored parts (used), in file order. */
  problems: OneTimeProblem[];
}

const NEWLINE = 0x0a;
const MARK = Buffer.from('#');

/** Classifies every line of a one-time sequences file's content. */
export function scanOneTimeSequences(content: Buffer, path: string): OneTimeScan {
  const scan: OneTimeScan = { path, unused: [], problems: [] };
  let offset = 0;
  for (let line = 1; offset <= content.length; line++) {
    const newline = content.indexOf(NEWLINE, offset);
    const end = newline < 0 ? content.length : newline;
    const text = content.toString('utf8', offset, end).trim();
    if (text !== '' && !text.startsWith('#')) {
      const report = (message: string) => scan.problems.push({ line, message: `${path}:${line}: ${message}` });
      try {
        scan.unused.push({ line, offset, sequence: parseSequence(text, report) });
      } catch (error) {
        if (!(error instanceof SequenceError)) throw error;
        report(`${error.message}; this line is skipped (fix it, or comment it out with #)`);
      }
    }
    if (newline < 0) break;
    offset = newline + 1;
  }
  return scan;
}

/**
 * `content` with `used` marked: a `#` inserted in front of the first unused line holding exactly that sequence
 * (every other byte kept); null when no unused line holds it.
 */
export function markInContent(content: Buffer, path: string, used: readonly KnockStep[]): Buffer | null {
  const target = scanOneTimeSequences(content, path).unused.find((entry) => sameSteps(entry.sequence, used));
  if (target === undefined) return null;
  return Buffer.concat([content.subarray(0, target.offset), MARK, content.subarray(target.offset)]);
}

export function sameSteps(a: readonly KnockStep[], b: readonly KnockStep[]): boolean {
  return a.length === b.length && a.every((step, i) => step.port === b[i]!.port && step.proto === b[i]!.proto);
}
