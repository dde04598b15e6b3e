/**
 * A file the follower reads (follower.ts), and how it is found again: known by its (device, inode) and the hash of
 * its first bytes, which the cursor keeps, so that after a restart or a copytruncate the same bytes are found under
 * their old name, the followed path, or a rotated sibling (`kern.log.1`, `kern.log-20260101`).
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readdirSync, readSync, realpathSync, statSync, type BigIntStats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LineFramer } from './line-framer.js';

/** One open file being read. */
export interface FollowedFile {
  fd: number;
  dev: bigint;
  ino: bigint;
  /** Its real path when opened: used in messages and to look for it again after a restart. */
  name: string;
  /** First byte not yet consumed: the start of the next line (or of the over-long line being skipped). */
  offset: number;
  /** Size at the last check. */
  size: number;
  /** The file's first bytes as read so far (HEAD_BYTES allocated, headLength valid). */
  head: Buffer;
  headLength: number;
  /** Frames its bytes into lines (and knows when it is inside an over-long line). */
  framer: LineFramer;
  /** Date.now() when it last grew (or was retired): an old file is closed once quiet for the grace period. */
  lastGrowth: number;
}

/** What the cursor file holds for one open file. */
export interface CursorEntry {
  dev: string;
  ino: string;
  name: string;
  offset: number;
  size: number;
  headLength: number;
  headSha256: string;
  skippingLongLine: boolean;
}

export interface SavedCursor {
  version: 1;
  path: string;
  files: CursorEntry[];
}

const HEAD_BYTES = 1024;
/** Where headUnchanged reads (every call is synchronous, so one buffer serves every follower). */
const headScratch = Buffer.allocUnsafe(HEAD_BYTES);

/** Opens `name` to be read from `offset`, with its head read. */
export function openFollowedFile(name: string, offset: number, maxLineLength: number): FollowedFile {
  const fd = openSync(name, 'r');
  try {
    const stats = fstatSync(fd, { bigint: true });
    const file: FollowedFile = {
      fd,
      dev: stats.dev,
      ino: stats.ino,
      name: realpathOr(name),
      offset,
      size: Number(stats.size),
      head: Buffer.alloc(HEAD_BYTES),
      headLength: 0,
      framer: new LineFramer(maxLineLength),
      lastGrowth: Date.now(),
    };
    headUnchanged(file);
    return file;
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/** Whether the file still starts with the bytes seen before; learns more of the head while it is short. */
export function headUnchanged(file: FollowedFile): boolean {
  const count = readSync(file.fd, headScratch, 0, HEAD_BYTES, 0);
  if (count < file.headLength) return false;
  if (headScratch.compare(file.head, 0, file.headLength, 0, file.headLength) !== 0) return false;
  if (count > file.headLength) {
    headScratch.copy(file.head, file.headLength, file.headLength, count);
    file.headLength = count;
  }
  return true;
}

export function sameFile(file: FollowedFile, stats: BigIntStats): boolean {
  return file.ino === stats.ino && file.dev === stats.dev;
}

export function cursorEntryOf(file: FollowedFile): CursorEntry {
  return {
    dev: String(file.dev),
    ino: String(file.ino),
    name: file.name,
    offset: file.offset,
    size: file.size,
    headLength: file.headLength,
    headSha256: sha256(file.head, file.headLength),
    skippingLongLine: file.framer.skipping,
  };
}

/** Finds the files of a followed path again, by their cursor entries; `claimed` holds the identities already found. */
export class FileFinder {
  constructor(
    /** The followed path. */
    private readonly path: string,
    private readonly maxLineLength: number,
  ) {}

  /**
   * The file of a cursor entry: by identity and head among its old name, the path and their rotated siblings;
   * else (copytruncate while stopped) a sibling with the same head, which is the copy.
   */
  locate(entry: CursorEntry, claimed: Set<string>): FollowedFile | null {
    const identity = `${entry.dev}:${entry.ino}`;
    const siblings = this.rotatedSiblings(entry.name);
    const byIdentity = (stats: BigIntStats) => `${stats.dev}:${stats.ino}` === identity;
    return this.openMatching([entry.name, this.path, ...siblings], entry, claimed, byIdentity)
      // An empty head would match any file.
      ?? (entry.headLength > 0 ? this.openMatching(siblings, entry, claimed, (stats) => !byIdentity(stats)) : null);
  }

  /** A rotated sibling of `file` with its head and at least its offset (logrotate's copy), other than the files in `claimed`. */
  copyOf(file: FollowedFile, claimed: Set<string>): FollowedFile | null {
    return this.openMatching(this.rotatedSiblings(file.name), cursorEntryOf(file), claimed, () => true);
  }

  private openMatching(names: string[], entry: CursorEntry, claimed: Set<string>, accept: (stats: BigIntStats) => boolean): FollowedFile | null {
    for (const name of names) {
      const stats = statSync(name, { bigint: true, throwIfNoEntry: false });
      const identity = `${stats?.dev}:${stats?.ino}`;
      if (!stats?.isFile() || Number(stats.size) < entry.offset || claimed.has(identity) || !accept(stats)) continue;
      let file: FollowedFile;
      try {
        file = openFollowedFile(name, entry.offset, this.maxLineLength);
      } catch (error) {
        if (!isSystemError(error)) throw error;
        continue; // unreadable (permissions, raced away): not the file we are looking for
      }
      if (file.headLength >= entry.headLength && sha256(file.head, entry.headLength) === entry.headSha256) {
        file.framer.skipping = entry.skippingLongLine;
        claimed.add(identity);
        return file;
      }
      closeSync(file.fd);
    }
    return null;
  }

  /** Files beside the old name or the path whose name starts like theirs (`kern.log.1`, `kern.log-20260101`), themselves excluded. */
  private rotatedSiblings(oldName: string): string[] {
    const own = new Set([oldName, this.path, realpathOr(this.path)]);
    const siblings = new Set<string>();
    for (const known of own) {
      const directory = dirname(known);
      const stem = basename(known);
      let names: string[] = [];
      try {
        names = readdirSync(directory);
      } catch {
        continue; // the directory is gone: nothing to find there
      }
      for (const name of names.sort()) {
        const sibling = join(directory, name);
        if (name.startsWith(stem) && !own.has(sibling)) siblings.add(sibling);
      }
    }
    return [...siblings];
  }
}

export function isSystemError(error: unknown): boolean {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string';
}

export function isSavedCursor(value: unknown): value is SavedCursor {
  if (typeof value !== 'object' || value === null) return false;
  const cursor = value as Partial<SavedCursor>;
  return cursor.version === 1 && typeof cursor.path === 'string' && Array.isArray(cursor.files) && cursor.files.every(isCursorEntry);
}

function isCursorEntry(value: unknown): value is CursorEntry {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  const isCount = (field: unknown) => Number.isSafeInteger(field) && (field as number) >= 0;
  return /^\d+$/.test(String(entry.dev)) && /^\d+$/.test(String(entry.ino)) && typeof entry.name === 'string'
    && isCount(entry.offset) && isCount(entry.size) && isCount(entry.headLength) && (entry.headLength as number) <= HEAD_BYTES
    && typeof entry.headSha256 === 'string' && typeof entry.skippingLongLine === 'boolean';
}

function sha256(bytes: Buffer, length: number): string {
  return createHash('sha256').update(bytes.subarray(0, length)).digest('hex');
}

function realpathOr(name: string): string {
  try {
    return realpathSync(name);
  } catch {
    return name;
  }
}
