/**
 * Seen messages: each encrypted message opens once. A message is remembered from its first use until
 * MAX_WINDOW_SECONDS after its own timestamp, after which no door's window accepts it anyway; the
 * daemon keeps the table in its state directory so a restart forgets nothing (docs/encrypted-knocks.md).
 */
import { renameSync, statSync } from 'node:fs';
import { JsonStateFile } from '../durable.js';
import { MAX_WINDOW_SECONDS } from './format.js';

/** How long a message is remembered after its timestamp, ms. */
export const RETENTION_MS = MAX_WINDOW_SECONDS * 1000;
/** Only accepted messages are stored, so this many within the retention means something is wrong. */
export const MAX_SEEN = 10_000;

/** The message cannot be recorded as used, so it must open nothing. */
export class NonceStoreError extends Error {}

export interface SeenNonces {
  /**
   * Records message `id` of `scope` (a door) as used: 'claimed' the first time, 'replayed' after.
   * `messageTime` is the message's own timestamp (ms). Throws NonceStoreError when the use cannot be
   * recorded (or, after a damaged table, could have been recorded before).
   */
  claim(scope: string, id: string, messageTime: number, now: number): 'claimed' | 'replayed';
}

/** For replay and tests: forgets everything when the process ends. */
export class MemorySeenNonces implements SeenNonces {
  /** `scope NUL id` → when it may be forgotten (ms). */
  protected readonly seen = new Map<string, number>();
  /** Messages stamped before this may have been used while the table was lost (see FileSeenNonces). */
  protected distrustBefore = -Infinity;

  claim(scope: string, id: string, messageTime: number, now: number): 'claimed' | 'replayed' {
    const key = `${scope}\0${id}`;
    if (this.seen.has(key)) return 'replayed';
    if (messageTime < this.distrustBefore) {
      throw new NonceStoreError(`the table of used messages was lost; messages stamped before ${new Date(this.distrustBefore).toISOString()} may have been used already`);
    }
    for (const [entry, expires] of this.seen) if (expires <= now) this.seen.delete(entry);
    if (this.seen.size >= MAX_SEEN) throw new NonceStoreError(`more than ${MAX_SEEN} messages were accepted within ${MAX_WINDOW_SECONDS} s; refusing more until some expire`);
    this.seen.set(key, messageTime + RETENTION_MS);
    this.saved();
    return 'claimed';
  }

  /** How many messages are remembered (for status). */
  get size(): number {
    return this.seen.size;
  }

  /** Called after each new entry; a durable table writes itself here. */
  protected saved(): void {}
}

/** The state file's content: version 1, entries `[scope, id, expires ms]`. */
interface SeenFile {
  version: 1;
  entries: Array<[string, string, number]>;
}

/** Beside the state file when it could not be read. */
export const DAMAGED_SUFFIX = '.damaged';

/**
 * The daemon's table, in a JSON file rewritten atomically at every accepted message (messages are
 * rare: only authentic ones get here). A damaged file cannot tell which recent messages were used,
 * so for one retention period messages stamped before the start are refused (fail closed).
 */
export class FileSeenNonces extends MemorySeenNonces {
  private readonly state: JsonStateFile;

  /** Throws when the file may not be trusted (owner, permissions); reports a damaged file through `onProblem`. */
  constructor(
    readonly file: string,
    now: number,
    onProblem: (message: string) => void,
  ) {
    super();
    this.state = new JsonStateFile(file, 'table of used encrypted messages');
    checkOwnership(file);
    let saved: unknown;
    try {
      saved = this.state.load();
    } catch (error) {
      saved = (error as Error).message;
    }
    if (saved === null) return;
    if (!isSeenFile(saved)) {
      renameSync(file, `${file}${DAMAGED_SUFFIX}`);
      this.distrustBefore = now + RETENTION_MS;
      onProblem(
        `${typeof saved === 'string' ? saved : `${file} is not a table of used messages`}; it is kept as ${file}${DAMAGED_SUFFIX}. ` +
          `Messages stamped before ${new Date(this.distrustBefore).toISOString()} are refused, since they may have been used already`,
      );
      return;
    }
    for (const [scope, id, expires] of saved.entries) if (expires > now) this.seen.set(`${scope}\0${id}`, expires);
  }

  protected override saved(): void {
    const entries: SeenFile['entries'] = [];
    for (const [key, expires] of this.seen) {
      const split = key.indexOf('\0');
      entries.push([key.slice(0, split), key.slice(split + 1), expires]);
    }
    try {
      this.state.save({ version: 1, entries } satisfies SeenFile);
    } catch (error) {
      throw new NonceStoreError((error as Error).message);
    }
  }
}

/** Whoever can write the table can make used messages work again: only knocktail's own user may. */
function checkOwnership(file: string): void {
  let stats;
  try {
    stats = statSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new Error(`cannot use ${file}: ${(error as Error).message}`);
  }
  const uid = process.geteuid?.();
  if (!stats.isFile()) throw new Error(`${file} is not a regular file; move it away, knocktail keeps its table of used encrypted messages there`);
  if (uid !== undefined && stats.uid !== uid) throw new Error(`${file} belongs to uid ${stats.uid}, not to uid ${uid} that knocktail runs as: chown ${uid} ${file}`);
  if ((stats.mode & 0o022) !== 0) throw new Error(`${file} can be written by other users (mode ${(stats.mode & 0o777).toString(8)}), who could make used messages open again: chmod 600 ${file}`);
}

function isSeenFile(value: unknown): value is SeenFile {
  if (typeof value !== 'object' || value === null) return false;
  const { version, entries } = value as Partial<SeenFile>;
  return (
    version === 1 &&
    Array.isArray(entries) &&
    entries.every((entry) => Array.isArray(entry) && entry.length === 3 && typeof entry[0] === 'string' && typeof entry[1] === 'string' && Number.isFinite(entry[2]))
  );
}
