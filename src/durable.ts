/**
 * Writing state files so that a crash or power loss leaves either the old or the new content, never a
 * torn file: temp file in the same directory, fsync, rename over the old one, fsync the directory.
 * Pending stops, log positions and one-time sequence files all go through here.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fchownSync, fsyncSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
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
