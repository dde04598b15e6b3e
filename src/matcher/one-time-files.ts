/**
 * Where the matcher reads and marks one-time sequence files: a small interface, so that the daemon writes the
 * marks to disk (durably, surviving a restart even when a file cannot be written) while replay, a dry run over
 * the past, marks them only in memory and never changes a user's file.
 */
import { readFileSync } from 'node:fs';
import { formatSequence, parseSequence, SequenceError } from '../config/sequence.js';
import type { KnockStep } from '../config/types.js';
import { JsonStateFile, writeFileAtomically } from '../durable.js';
import { markInContent, type OneTimeScan, scanOneTimeSequences } from './one-time.js';

export interface OneTimeFiles {
  /** The file's lines now (its first unused line is the door's sequence); throws an Error when it cannot be used. */
  load(path: string): OneTimeScan;
  /**
   * Marks `used` as used (the first unused line holding exactly it) and returns the new scan. Throws when the
   * mark cannot be kept; the sequence then stays blocked: load() fails until the mark is written.
   */
  markUsed(path: string, used: readonly KnockStep[]): OneTimeScan;
}

/** The daemon's: marks are written to the file atomically (re-read first: it may have been edited since). */
export class DiskOneTimeFiles implements OneTimeFiles {
  private readonly unmarked: UnmarkedSequences;

  /** `unmarkedFile`: the state file where marks that could not be written are kept across restarts (null: in memory). */
  constructor(unmarkedFile: string | null, warn: (message: string) => void) {
    this.unmarked = new UnmarkedSequences(unmarkedFile, warn);
  }

  load(path: string): OneTimeScan {
    if (this.unmarked.damage !== null) throw new Error(this.unmarked.damage);
    const pending = this.unmarked.get(path);
    const scan = pending === undefined ? scanOneTimeSequences(readSequencesFile(path), path) : writeMark(path, pending);
    this.unmarked.delete(path);
    return scan;
  }

  markUsed(path: string, used: readonly KnockStep[]): OneTimeScan {
    try {
      return writeMark(path, used);
    } catch (error) {
      this.unmarked.set(path, used);
      throw error;
    }
  }
}

/** The file's bytes; an error names the file and the fix. */
function readSequencesFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}; fix the file, then reload`);
  }
}

function writeMark(path: string, used: readonly KnockStep[]): OneTimeScan {
  const content = readSequencesFile(path);
  const updated = markInContent(content, path, used);
  if (updated === null) return scanOneTimeSequences(content, path);
  writeFileAtomically(path, updated);
  return scanOneTimeSequences(updated, path);
}

/** Replay's: each file is read once; marks change only the copy in memory. */
export class MemoryOneTimeFiles implements OneTimeFiles {
  private readonly contents = new Map<string, Buffer>();

  load(path: string): OneTimeScan {
    return scanOneTimeSequences(this.content(path), path);
  }

  markUsed(path: string, used: readonly KnockStep[]): OneTimeScan {
    const updated = markInContent(this.content(path), path, used);
    if (updated !== null) this.contents.set(path, updated);
    return this.load(path);
  }

  private content(path: string): Buffer {
    let content = this.contents.get(path);
    if (content === undefined) this.contents.set(path, (content = readSequencesFile(path)));
    return content;
  }
}

/**
 * Used sequences whose mark could not be written to their one-time file (keyed by the file): their doors stay
 * disabled until the mark is written. With a state file they survive a restart too, so a daemon restarted
 * while the file is still unwritable does not offer the used sequence again: a sequence someone has seen
 * must never open twice.
 */
class UnmarkedSequences {
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
