/**
 * Used one-time knocks: each encrypted message (docs/encrypted-knocks.md) and each rolling door's sequence of a
 * period (docs/rolling-sequences.md §5) opens once. A use is remembered, with when and by whom, until no door can
 * accept that knock any more; the daemon keeps the table in its state directory so a restart forgets nothing,
 * replay keeps it in memory.
 */
import { renameSync, statSync } from 'node:fs';
import { JsonStateFile } from '../durable.js';

/** The daemon's table, in its state directory. */
export const USED_KNOCKS_FILE = 'used-knocks.json';
/** Only opens are stored, so this many at once means something is wrong: refuse rather than forget. */
export const MAX_USED = 10_000;

/** The use cannot be recorded (or, after a damaged table, may have happened already): the knock must open nothing. */
export class UnrecordedUseError extends Error {}

/** When a one-time knock was used, and from which address. */
export interface Use {
  /** ms since the epoch. */
  at: number;
  by: string;
}

export interface KnockClaim {
  /** The door: each door has its own messages and sequences. */
  scope: string;
  /** The message's identity, or a rolling sequence's period (`period 58907520`). */
  id: string;
  /** The earliest time the knock could have been used (a damaged table distrusts knocks usable before the daemon started). */
  usableFrom: number;
  /** When no door accepts it any more, so it may be forgotten (ms). */
  keepUntil: number;
  use: Use;
}

export interface UsedKnocks {
  /**
   * Records a use: null the first time, the first use after that. Throws UnrecordedUseError when the use cannot be
   * recorded (or, after a damaged table, could have been recorded before).
   */
  claim(claim: KnockClaim, now: number): Use | null;
}

interface Entry {
  keepUntil: number;
  use: Use;
}

/** For replay and tests: forgets everything when the process ends. */
export class MemoryUsedKnocks implements UsedKnocks {
  /** `scope NUL id` → its use. */
  protected readonly used = new Map<string, Entry>();
  /** Knocks usable before this may have been used while the table was lost (see FileUsedKnocks). */
  protected distrustBefore = -Infinity;

  claim(claim: KnockClaim, now: number): Use | null {
    const key = `${claim.scope}\0${claim.id}`;
    const earlier = this.used.get(key);
    if (earlier !== undefined) return earlier.use;
    if (claim.usableFrom < this.distrustBefore) {
      throw new UnrecordedUseError(`the table of used knocks was lost; knocks usable before ${new Date(this.distrustBefore).toISOString()} may have been used already`);
    }
    for (const [entry, { keepUntil }] of this.used) if (keepUntil <= now) this.used.delete(entry);
    if (this.used.size >= MAX_USED) throw new UnrecordedUseError(`more than ${MAX_USED} one-time knocks are remembered at once; refusing more until some expire`);
    this.used.set(key, { keepUntil: claim.keepUntil, use: { at: claim.use.at, by: claim.use.by } });
    this.saved();
    return null;
  }

  /** How many uses are remembered (for status). */
  get size(): number {
    return this.used.size;
  }

  /** Called after each new entry; a durable table writes itself here. */
  protected saved(): void {}
}

/** The state file's content: version 1, entries `[scope, id, keepUntil ms, used at ms, used by]`. */
interface UsedFile {
  version: 1;
  entries: Array<[string, string, number, number, string]>;
}

/** Beside the state file when it could not be read. */
export const DAMAGED_SUFFIX = '.damaged';

/**
 * The daemon's table, in a JSON file rewritten atomically at every open (only opens get here, so writes are
 * rare). A damaged file cannot tell which recent knocks were used, so knocks that could have been used before
 * the start are refused (fail closed).
 */
export class FileUsedKnocks extends MemoryUsedKnocks {
  private readonly state: JsonStateFile;

  /** Throws when the file may not be trusted (owner, permissions); reports a damaged file through `onProblem`. */
  constructor(
    readonly file: string,
    now: number,
    onProblem: (message: string) => void,
  ) {
    super();
    this.state = new JsonStateFile(file, 'table of used one-time knocks');
    const problem = usedKnocksFileProblem(file);
    if (problem !== null) throw new Error(`${problem.message}: ${problem.fix}`);
    let saved: unknown;
    try {
      saved = this.state.load();
    } catch (error) {
      saved = (error as Error).message;
    }
    if (saved === null) return;
    if (!isUsedFile(saved)) {
      renameSync(file, `${file}${DAMAGED_SUFFIX}`);
      this.distrustBefore = now;
      onProblem(
        `${typeof saved === 'string' ? saved : `${file} is not a table of used knocks`}; it is kept as ${file}${DAMAGED_SUFFIX}. ` +
          'Encrypted messages and rolling sequences that could have been used before now are refused, since they may have been used already',
      );
      return;
    }
    for (const [scope, id, keepUntil, at, by] of saved.entries) if (keepUntil > now) this.used.set(`${scope}\0${id}`, { keepUntil, use: { at, by } });
  }

  protected override saved(): void {
    const entries: UsedFile['entries'] = [];
    for (const [key, { keepUntil, use }] of this.used) {
      const split = key.indexOf('\0');
      entries.push([key.slice(0, split), key.slice(split + 1), keepUntil, use.at, use.by]);
    }
    try {
      this.state.save({ version: 1, entries } satisfies UsedFile);
    } catch (error) {
      throw new UnrecordedUseError((error as Error).message);
    }
  }
}

/**
 * Why the table may not be trusted, with the fix, or null (also when it does not exist yet). Whoever can write it
 * can make used knocks work again: only knocktail's own user may. The daemon refuses to start on it, and
 * check-config reports it (src/daemon/preflight.ts).
 */
export function usedKnocksFileProblem(file: string): { message: string; fix: string } | null {
  let stats;
  try {
    stats = statSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return { message: `cannot use ${file}: ${(error as Error).message}`, fix: `make ${file} readable for knocktail's user` };
  }
  const uid = process.geteuid?.();
  if (!stats.isFile()) return { message: `${file} is not a regular file`, fix: `move it away; knocktail keeps its table of used one-time knocks there` };
  if (uid !== undefined && stats.uid !== uid) return { message: `${file} belongs to uid ${stats.uid}, not to uid ${uid} that knocktail runs as`, fix: `chown ${uid} ${file}` };
  if ((stats.mode & 0o022) !== 0) {
    return { message: `${file} can be written by other users (mode ${(stats.mode & 0o777).toString(8)}), who could make used knocks open again`, fix: `chmod 600 ${file}` };
  }
  return null;
}

function isUsedFile(value: unknown): value is UsedFile {
  if (typeof value !== 'object' || value === null) return false;
  const { version, entries } = value as Partial<UsedFile>;
  return (
    version === 1 &&
    Array.isArray(entries) &&
    entries.every(
      (entry) =>
        Array.isArray(entry) &&
        entry.length === 5 &&
        typeof entry[0] === 'string' &&
        typeof entry[1] === 'string' &&
        Number.isFinite(entry[2]) &&
        Number.isFinite(entry[3]) &&
        typeof entry[4] === 'string',
    )
  );
}
