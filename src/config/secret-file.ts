/**
 * Secret files (a rolling door's `Sequence_Secret`, an encrypted door's `Knock_Key`): read once, checked on the
 * opened file itself (no race between check and read), refused unless they are regular files that only their
 * owner can read, owned by root or by the user reading them, of a sensible size. The key never leaves this
 * module as plain bytes: callers get a KeyObject, which prints as nothing but its size.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { InvalidValue } from './directive.js';

/** A secret file that passed the checks. */
export interface SecretFile {
  /** Absolute path, as configured. */
  path: string;
  /** The key: the file's bytes without one trailing line break (docs/rolling-sequences.md §2). */
  key: KeyObject;
  /** Key length in bytes. */
  size: number;
  /** Owner uid and permission bits when read (for `check-config`). */
  uid: number;
  mode: number;
}

/** A secret file that cannot be used: `message` names the file and the problem, `hint` the fix. */
export class SecretFileError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'SecretFileError';
  }
}

export const MIN_SECRET_BYTES = 16;
/** Far more than any key needs: a bigger file is a wrong path, not a secret. */
export const MAX_SECRET_BYTES = 4096;

const GENERATE = (path: string): string => `create it with: (umask 077; head -c 24 /dev/urandom | base64 > ${path})`;

/** Who may own a secret: root, or the user reading it (a client's copy belongs to its user). */
function ownerProblem(stat: Pick<Stats, 'uid'>, euid: number): string | null {
  if (stat.uid === 0 || stat.uid === euid) return null;
  return euid === 0 ? `is owned by uid ${stat.uid}, not root` : `is owned by uid ${stat.uid}, neither root nor you (uid ${euid})`;
}

/**
 * What is wrong with a secret file's metadata, with the fix; null when it may be used. Pure, so every rule is
 * testable without root.
 */
export function secretFileProblem(path: string, stat: Pick<Stats, 'uid' | 'mode' | 'size' | 'isFile'>, euid: number): SecretFileError | null {
  if (!stat.isFile()) return new SecretFileError(`${path} is not a regular file`, GENERATE(path));
  const owner = ownerProblem(stat, euid);
  if (owner !== null) {
    return new SecretFileError(`${path} ${owner}: whoever owns it can change the secret`, euid === 0 ? `chown root: ${path}` : `chown ${euid} ${path}`);
  }
  const access = stat.mode & 0o077;
  if (access !== 0) {
    const who = access & 0o007 ? 'others' : 'its group';
    return new SecretFileError(`${path} can be read or written by ${who} (mode ${octal(stat.mode)}): a secret only its owner may read`, `chmod 600 ${path}`);
  }
  if (stat.size > MAX_SECRET_BYTES) {
    return new SecretFileError(`${path} holds ${stat.size} bytes, more than a secret file's ${MAX_SECRET_BYTES}`, `check the path; ${GENERATE(path)}`);
  }
  return null;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** The key bytes: the content without one trailing LF or CRLF, so `echo TEXT > FILE` and typing TEXT agree. */
export function keyBytes(content: Buffer): Buffer {
  let end = content.length;
  if (end > 0 && content[end - 1] === 0x0a) end--;
  if (end > 0 && end < content.length && content[end - 1] === 0x0d) end--;
  return content.subarray(0, end);
}

/** Opens, checks and reads a secret file; throws SecretFileError with the fix. */
export function readSecretFile(path: string, euid = process.geteuid?.() ?? 0): SecretFile {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO put in its place must not hang the daemon; it is refused below as not a regular file.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? GENERATE(path) : code === 'EACCES' ? 'run as root or as the owner of the file' : 'fix the path';
    throw new SecretFileError(`cannot read ${path}: ${(error as Error).message}`, hint);
  }
  try {
    const stat = fstatSync(fd);
    const problem = secretFileProblem(path, stat, euid);
    if (problem !== null) throw problem;
    const content = Buffer.alloc(stat.size);
    let read = 0;
    while (read < content.length) {
      const n = readSync(fd, content, read, content.length - read, read);
      if (n === 0) break;
      read += n;
    }
    const bytes = keyBytes(content.subarray(0, read));
    if (bytes.length < MIN_SECRET_BYTES) {
      throw new SecretFileError(`${path} holds ${bytes.length} bytes; a secret needs at least ${MIN_SECRET_BYTES} random bytes`, GENERATE(path));
    }
    const secret: SecretFile = { path, key: createSecretKey(bytes), size: bytes.length, uid: stat.uid, mode: stat.mode & 0o7777 };
    content.fill(0);
    return secret;
  } finally {
    closeSync(fd);
  }
}

/** The checks a secret file passed, in words (never its content). */
export function describeSecretFile(secret: SecretFile): string {
  return `${secret.path}: ${secret.size}-byte key, owner ${secret.uid === 0 ? 'root' : `uid ${secret.uid}`}, mode ${octal(secret.mode)} (a regular file only its owner can read)`;
}

/** readSecretFile for a directive: a refusal becomes the InvalidValue the parser reports with file:line. */
export function secretFileDirective(path: string): SecretFile {
  try {
    return readSecretFile(path);
  } catch (error) {
    if (error instanceof SecretFileError) throw new InvalidValue(error.message, error.hint);
    throw error;
  }
}
