/**
 * One-time sequence files (`One_Time_Sequences`, spec §4), without knockd's bugs.
 *
 * One sequence per line in `Sequence` syntax; lines are trimmed, blank and `#` lines skipped, an invalid
 * line is skipped. The door's sequence is the first valid line. Using it inserts a `#` in front of exactly
 * that line (knockd overwrote the first byte: `3001` became `#001`, and after an invalid line it marked the
 * wrong one) and replaces the file atomically; every other byte stays as it was (CRLF, a missing final
 * newline, comments, bytes that are not UTF-8).
 */
import { readFileSync } from 'node:fs';
import { formatSequence, parseSequence, SequenceError } from '../config/sequence.js';
import type { KnockStep } from '../config/types.js';
import { JsonStateFile, writeFileAtomically } from '../durable.js';

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

/** Reads and classifies a one-time sequences file (check-config shows `unused[0]` as the current sequence). */
export function readOneTimeFile(path: string): OneTimeScan {
  return scanOneTimeSequences(readFileSync(path), path);
}

/**
 * Marks `used` as used in the file at `path`: re-reads the file (it may have been edited since it was
 * loaded), prefixes the first unused line with exactly that sequence with `#`, and replaces the file
 * atomically. Returns the scan of the new content. Throws (an Error naming the path) when the file can't
 * be read or written; the caller must then stop using the sequence.
 */
export function markSequenceUsed(path: string, used: readonly KnockStep[]): OneTimeScan {
  const content = readFileSync(path);
  const target = scanOneTimeSequences(content, path).unused.find((entry) => sameSteps(entry.sequence, used));
  if (target === undefined) return scanOneTimeSequences(content, path);
  const updated = Buffer.concat([content.subarray(0, target.offset), MARK, content.subarray(target.offset)]);
  writeFileAtomically(path, updated);
  return scanOneTimeSequences(updated, path);
}

export function sameSteps(a: readonly KnockStep[], b: readonly KnockStep[]): boolean {
  return a.length === b.length && a.every((step, i) => step.port === b[i]!.port && step.proto === b[i]!.proto);
}

/**
 * Used sequences whose mark could not be written to their one-time file (keyed by the file): their doors stay
 * disabled until the mark is written. With a state file they survive a restart too, so a daemon restarted
 * while the file is still unwritable does not offer the used sequence again: a sequence someone has seen
 * must never open twice.
 */
export class UnmarkedSequences {
  private readonly pending = new Map<string, readonly KnockStep[]>();
  private readonly state: JsonStateFile | null;
  /**
   * Why the state file could not be read, or null. Then nobody knows which sequences were used, so every
   * one-time door stays disabled (fail closed) until the file is dealt with.
   */
  readonly damage: string | null = null;

  constructor(
    file: string | null,
    private readonly warn: (message: string) => void,
  ) {
    this.state = file === null ? null : new JsonStateFile(file, 'record of unwritten one-time marks');
    try {
      this.load();
    } catch (error) {
      this.damage =
        `${(error as Error).message}; every door with One_Time_Sequences stays disabled: mark the used sequences ` +
        `in their files by hand (a # in front of the line), delete ${file}, then reload`;
    }
  }

  get(path: string): readonly KnockStep[] | undefined {
    return this.pending.get(path);
  }

  set(path: string, sequence: readonly KnockStep[]): void {
    this.pending.set(path, sequence);
    this.save();
  }

  delete(path: string): void {
    if (this.pending.delete(path)) this.save();
  }

  private load(): void {
    const value = this.state?.load() ?? null;
    if (value === null) return;
    const entries = (value as { unmarked?: unknown }).unmarked;
    if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) {
      throw new Error(`${this.state!.file} is not a knocktail record of unwritten one-time marks`);
    }
    for (const [path, text] of Object.entries(entries)) {
      try {
        if (typeof text !== 'string') throw new SequenceError('not a sequence');
        this.pending.set(path, parseSequence(text));
      } catch {
        throw new Error(`${this.state!.file}: the entry for ${path} is not a sequence (damaged?)`);
      }
    }
  }

  private save(): void {
    if (this.state === null) return;
    try {
      this.state.save({ unmarked: Object.fromEntries([...this.pending].map(([path, sequence]) => [path, formatSequence(sequence)])) });
    } catch (error) {
      this.warn(`${(error as Error).message}; the used sequences stay blocked only until knocktail restarts`);
    }
  }
}
