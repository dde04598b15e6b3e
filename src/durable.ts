/**
 * Writing state files so that a crash or power loss leaves either the old or the new content, never a
 * torn file: temp file in the same directory, fsync, rename over the old one, fsync the directory.
 * Pending stops, log positions, one-time sequence files and their unwritten marks all go through here.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fchownSync, fsyncSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Replaces `path` (the real file, when it is a symlink) with `data`. A new file gets `mode`; an existing one
 * keeps its permission bits and, when running as root, its owner (a one-time sequence file stays the admin's).
 */
export function writeFileAtomically(path: string, data: string | Uint8Array, mode = 0o600): void {
  let real = path;
  let original: { mode: number; uid: number; gid: number } | null = null;
  try {
    real = realpathSync(path);
    original = statSync(real);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const directory = dirname(real);
  const temp = join(directory, `.${basename(real)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    try {
      for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written, bytes.length - written);
      fchmodSync(fd, original === null ? mode : original.mode & 0o7777);
      if (original !== null && process.getuid?.() === 0) fchownSync(fd, original.uid, original.gid);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, real);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  syncDirectory(directory);
}

/** Makes a rename in `directory` durable. Some filesystems refuse fsync on a directory: the rename itself already happened. */
export function syncDirectory(directory: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(directory, 'r');
    fsyncSync(fd);
  } catch {
    // Best effort: the data file itself was fsynced.
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/**
 * One JSON value kept in one state file (an input's position, one-time marks not yet written), saved with
 * writeFileAtomically: after a crash the file holds either the old or the new value, never a torn one.
 */
export class JsonStateFile {
  /** The text last written or read, so that saving an unchanged value costs nothing. */
  private lastText: string | null = null;

  /** `what` names the file in messages, e.g. "cursor file". */
  constructor(
    readonly file: string,
    private readonly what: string,
  ) {}

  /**
   * The saved value, or null when nothing was saved yet. Throws an Error naming the file when it
   * cannot be read or is not JSON; the caller decides what to do without it.
   */
  load(): unknown {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new Error(`cannot read the ${this.what} ${this.file}: ${(error as Error).message}`);
    }
    try {
      const value: unknown = JSON.parse(text);
      this.lastText = text;
      return value;
    } catch {
      throw new Error(`the ${this.what} ${this.file} is not valid JSON (damaged?); delete it to start afresh`);
    }
  }

  /** Writes `value` atomically unless it equals what the file already holds. Throws on I/O errors. */
  save(value: unknown): void {
    const text = JSON.stringify(value);
    if (text === this.lastText) return;
    try {
      writeFileAtomically(this.file, text);
    } catch (error) {
      throw new Error(`cannot save the ${this.what} ${this.file}: ${(error as Error).message} (is its directory there and writable?)`);
    }
    this.lastText = text;
  }
}
