/**
 * Opening what replay and test-format read: files given by name and standard input (`-`). Each is opened once and
 * read front to back only, so pipes, process substitution (`<(zcat …)`) and /dev/stdin work like files; its kind
 * (text log, gzip, packet capture) is told from its first bytes as they are read, never by seeking. Every failure
 * becomes a message that names the file and says what to do.
 */
import { fstat, read, type Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { isatty } from 'node:tty';
import { promisify } from 'node:util';
import { isCaptureMagic } from '../packet/pcap-file.js';

/** The name that stands for standard input. */
export const STANDARD_INPUT = '-';

/** A file (or standard input) that cannot be opened or read; the message names it, then says why and what to do. */
export class ArchiveError extends Error {
  constructor(
    readonly label: string,
    readonly reason: string,
  ) {
    super(`${label}: ${reason}`);
  }
}

export type ArchiveKind = 'log' | 'gzip' | 'capture';

/** An input of replay or test-format, opened and ready to be read once, front to back. */
export interface ArchiveSource {
  /** As given on the command line (`-` for standard input); hits carry it as their input. */
  readonly name: string;
  /** For messages: the path, or "standard input". */
  readonly label: string;
  readonly kind: ArchiveKind;
  /** Bytes, for a regular file; null for a pipe or a device (its end is not known ahead). */
  readonly size: number | null;
  /** When a regular file was last written (null for a pipe): year-less stamps are placed near it. */
  readonly modified: number | null;
  /** Year-less stamps are placed near this time: `modified`, or for a pipe when it was opened. */
  readonly reference: number;
  /** Device and inode: the same file under two names is one input. */
  readonly identity: string;
  /** Bytes read so far (before decompression). */
  readonly bytesRead: number;
  /** Reads the next bytes into `buffer` at `offset`; 0 at the end. */
  read(buffer: Uint8Array, offset: number, length: number): Promise<number>;
  close(): Promise<void>;
}

/** Bytes told apart by the first ones: 4 hold a capture's magic, 2 gzip's. */
const HEAD_BYTES = 4;

const readFd = promisify(read);
const fstatFd = promisify(fstat);

class OpenedSource implements ArchiveSource {
  bytesRead = 0;
  kind: ArchiveKind = 'log';
  readonly reference: number;
  /** The first bytes, read to tell the kind, handed out again by the first reads. */
  private head: Buffer | null = null;
  private closed = false;

  constructor(
    readonly name: string,
    readonly label: string,
    readonly size: number | null,
    readonly modified: number | null,
    readonly identity: string,
    private readonly readBytes: (buffer: Uint8Array, offset: number, length: number) => Promise<number>,
    private readonly closeFile: () => Promise<void>,
  ) {
    this.reference = modified ?? Date.now();
  }

  /** Reads the first bytes (as many reads as a pipe needs) and tells the kind from them. */
  async sniff(): Promise<void> {
    const head = Buffer.alloc(HEAD_BYTES);
    let length = 0;
    for (let n = -1; length < HEAD_BYTES && n !== 0; length += n) n = await this.readBytes(head, length, HEAD_BYTES - length);
    this.head = head.subarray(0, length);
    if (isCaptureMagic(this.head)) this.kind = 'capture';
    else if (this.head[0] === 0x1f && this.head[1] === 0x8b) this.kind = 'gzip';
  }

  async read(buffer: Uint8Array, offset: number, length: number): Promise<number> {
    let n = 0;
    if (this.head !== null && this.head.length > 0) {
      n = Math.min(length, this.head.length);
      buffer.set(this.head.subarray(0, n), offset);
      this.head = this.head.subarray(n);
    }
    if (n < length) {
      try {
        n += await this.readBytes(buffer, offset + n, length - n);
      } catch (error) {
        throw new ArchiveError(this.label, readFailure(error as NodeJS.ErrnoException));
      }
    }
    this.bytesRead += n;
    return n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.closeFile();
  }
}

/** Opens a file, or standard input for `-`, and tells its kind; throws ArchiveError saying what is wrong and what to do. */
export async function openArchive(name: string): Promise<ArchiveSource> {
  const source = name === STANDARD_INPUT ? await openStandardInput() : await openFile(name);
  try {
    await source.sniff();
  } catch (error) {
    await source.close();
    throw error instanceof ArchiveError ? error : new ArchiveError(source.label, readFailure(error as NodeJS.ErrnoException));
  }
  return source;
}

async function openFile(path: string): Promise<OpenedSource> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new ArchiveError(path, openFailure(error as NodeJS.ErrnoException));
  }
  try {
    const stat = await handle.stat();
    const unusable = stat.isDirectory()
      ? `is a directory: give the log files in it (e.g. ${path.replace(/\/+$/, '')}/kern.log*)`
      : stat.isFile() || stat.isFIFO()
        ? null
        : 'is a device, not a log file or capture: save what it holds to a file first (e.g. dmesg > saved.txt)';
    if (unusable !== null) throw new ArchiveError(path, unusable);
    const regular = stat.isFile();
    return new OpenedSource(
      path,
      path,
      regular ? stat.size : null,
      regular ? stat.mtimeMs : null,
      `${stat.dev}:${stat.ino}`,
      async (buffer, offset, length) => (await handle.read(buffer, offset, length, null)).bytesRead,
      () => handle.close(),
    );
  } catch (error) {
    await handle.close();
    throw error;
  }
}

async function openStandardInput(): Promise<OpenedSource> {
  const label = 'standard input';
  if (isatty(0)) throw new ArchiveError(label, 'this is a terminal, not a log: pipe a log into it (e.g. zcat kern.log.2.gz | knocktail replay -)');
  let stat: Stats;
  try {
    stat = await fstatFd(0);
  } catch (error) {
    throw new ArchiveError(label, openFailure(error as NodeJS.ErrnoException));
  }
  // `- < kern.log` is that file: its size tells how far along the reading is, its date places year-less stamps.
  const regular = stat.isFile();
  return new OpenedSource(STANDARD_INPUT, label, regular ? stat.size : null, regular ? stat.mtimeMs : null, `${stat.dev}:${stat.ino}`, readStandardInput, async () => {});
}

/** How long to wait before reading again when standard input was left non-blocking by whoever set it up. */
const RETRY_MS = 10;

async function readStandardInput(buffer: Uint8Array, offset: number, length: number): Promise<number> {
  for (;;) {
    try {
      return (await readFd(0, buffer, offset, length, null)).bytesRead;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }
}

/** Why a file could not be opened, and what to do, after its name. */
function openFailure(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied: run knocktail as a user who may read it (e.g. with sudo), or make it readable';
    case 'ENOTDIR':
      return 'a part of this path is not a directory';
    case 'ELOOP':
      return 'too many symbolic links (a loop?)';
    case 'ENXIO':
      return `cannot be opened (${systemMessage(error)}): to read standard input, give ${STANDARD_INPUT}`;
    default:
      return `cannot be opened (${systemMessage(error)})`;
  }
}

/** Why reading stopped, after the file's name. */
export function readFailure(error: NodeJS.ErrnoException): string {
  if (error.code === 'EIO') return 'read error (EIO: the disk or the file system failed)';
  return `cannot be read (${systemMessage(error)})`;
}

/** Node's message without the path it repeats ("EACCES: permission denied, open '/x'" → "EACCES: permission denied"). */
function systemMessage(error: NodeJS.ErrnoException): string {
  return error.message.replace(/, \w+ '.*'$/s, '');
}

/**
 * Opens every input named, all before any is read: those that opened, why the others did not (each message names
 * its file), and the files given twice (under any name: the same device and inode), which would count every knock
 * in them twice.
 */
export async function openArchives(names: readonly string[]): Promise<{ sources: ArchiveSource[]; problems: string[]; twice: string[] }> {
  const sources: ArchiveSource[] = [];
  const problems: string[] = [];
  for (const name of names) {
    try {
      sources.push(await openArchive(name));
    } catch (error) {
      if (!(error instanceof ArchiveError)) throw error;
      problems.push(error.message);
    }
  }
  const twice: string[] = [];
  const byIdentity = new Map<string, ArchiveSource>();
  for (const source of sources) {
    const first = byIdentity.get(source.identity);
    if (first === undefined) byIdentity.set(source.identity, source);
    else twice.push(first.name === source.name ? `${source.label} is given twice: give it once` : `${first.label} and ${source.label} are the same file: give it once`);
  }
  return { sources, problems, twice };
}
