/**
 * Files that hold a secret (`Knock_Key`): read once at config load, refused unless only their owner can
 * read them and that owner is root or the user knocktail runs as, with the file and the fix in the error.
 * The bytes are kept out of JSON, util.inspect and string conversion, so no log line or status dump can
 * print them by accident.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { inspect } from 'node:util';
import { InvalidValue } from './values.js';

/** Fewer bytes than this cannot hold a 128-bit secret. */
const MIN_SECRET_BYTES = 16;
/** More is surely the wrong file. */
const MAX_SECRET_BYTES = 4096;

/** What check-config may say about a secret file: never its content. */
export interface SecretFileFacts {
  bytes: number;
  uid: number;
  /** Permission bits, e.g. 0o600. */
  mode: number;
}

export class SecretFile {
  readonly #bytes: Uint8Array;

  constructor(
    readonly path: string,
    bytes: Uint8Array,
    readonly facts: SecretFileFacts,
  ) {
    this.#bytes = bytes;
  }

  get bytes(): Uint8Array {
    return this.#bytes;
  }

  toJSON(): string {
    return `(secret from ${this.path})`;
  }

  toString(): string {
    return this.toJSON();
  }

  [inspect.custom](): string {
    return `SecretFile(${this.path})`;
  }
}

/** The owners a secret file may have: root, and the user knocktail runs as (a client needs no root). */
function allowedOwners(): number[] {
  const uid = process.geteuid?.() ?? 0;
  return uid === 0 ? [0] : [0, uid];
}

/**
 * Reads the secret file `file` (absolute), `what` naming it in messages (e.g. "Knock_Key file").
 * The checks run on the opened file, so a swap between check and read cannot slip past them.
 */
export function readSecretFile(file: string, what: string): SecretFile {
  const fix = `create it with: head -c 32 /dev/urandom > ${file} && chmod 600 ${file}`;
  let fd: number;
  try {
    // Non-blocking: a FIFO in place of the file must not hang the config load.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new InvalidValue(`cannot read the ${what} ${file}: ${(error as Error).message}`, fix);
  }
  try {
    const stats = fstatSync(fd);
    const mode = stats.mode & 0o7777;
    const modeText = mode.toString(8).padStart(4, '0');
    if (!stats.isFile()) throw new InvalidValue(`the ${what} ${file} is not a regular file`, fix);
    const owners = allowedOwners();
    if (!owners.includes(stats.uid)) {
      throw new InvalidValue(
        `the ${what} ${file} belongs to uid ${stats.uid}; it must belong to ${owners.length === 1 ? 'root' : `root or uid ${owners[1]} (the user knocktail runs as)`}`,
        `chown ${owners.at(-1) === 0 ? 'root:root' : owners.at(-1)} ${file}`,
      );
    }
    if ((mode & 0o077) !== 0) {
      throw new InvalidValue(`the ${what} ${file} can be read or written by other users (mode ${modeText}); only its owner may have access`, `chmod 600 ${file}`);
    }
    if (stats.size < MIN_SECRET_BYTES || stats.size > MAX_SECRET_BYTES) {
      throw new InvalidValue(`the ${what} ${file} holds ${stats.size} bytes; a secret is ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} random bytes`, fix);
    }
    const bytes = new Uint8Array(stats.size);
    let read = 0;
    while (read < bytes.length) {
      const got = readSync(fd, bytes, read, bytes.length - read, read);
      if (got === 0) break;
      read += got;
    }
    if (read !== stats.size) throw new InvalidValue(`the ${what} ${file} changed while it was read`, 'read it again (reload)');
    return new SecretFile(file, bytes, { bytes: read, uid: stats.uid, mode });
  } finally {
    closeSync(fd);
  }
}
