/**
 * The durable StopStore (docs/design.md, "Where state lives"): pending stops live in an append-only journal of JSON
 * lines in the state directory, one record per save or delete, fsynced before save()/delete() return.
 * The journal is rewritten atomically (temp file, fsync, rename, fsync of the directory) when it is
 * opened and when dead records pile up, so it stays about as small as the set of open doors.
 *
 * A damaged journal never keeps the daemon from starting: every readable record is kept, every
 * damaged one is reported with its line and text (so a door it kept open can be closed by hand), and
 * the damaged file is kept beside the journal for inspection.
 */
import { closeSync, copyFileSync, fchmodSync, fdatasyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomically } from '../durable.js';
import type { PendingStop, StopStore } from './stop-store.js';

/** The journal's name in the state directory. */
export const STOPS_FILE = 'pending-stops.jsonl';
/** Where a damaged journal is copied before it is rewritten without its damaged records. */
export const DAMAGED_SUFFIX = '.damaged';

/** A journal record: a stop recorded (or its due time changed), or a stop that ran. */
type JournalRecord = { save: PendingStop } | { delete: string };

/** Dead records tolerated before a rewrite: a rewrite costs one pass over the live stops. */
const COMPACT_AFTER_RECORDS = 256;
/** Characters of a damaged record quoted in its report. */
const EXCERPT_LENGTH = 300;

export class FileStopStore implements StopStore {
  readonly file: string;
  private readonly stops = new Map<string, PendingStop>();
  private fd: number | null = null;
  /** Records in the journal file (live and dead). */
  private records = 0;
  /** An append failed half-way (disk full, I/O error): rewrite the journal before the next append. */
  private needsRewrite = false;

  /**
   * Opens the journal in `directory` (which must exist), creating it when missing. Damaged records are
   * reported through `onProblem` and dropped; throws only when the journal cannot be rewritten.
   */
  constructor(directory: string, onProblem: (message: string) => void) {
    this.file = join(directory, STOPS_FILE);
    this.read(onProblem);
    this.rewrite();
  }

  load(): PendingStop[] {
    return [...this.stops.values()].map((stop) => ({ ...stop }));
  }

  save(stop: PendingStop): void {
    this.append({ save: stop });
    this.stops.set(stop.id, { ...stop });
  }

  delete(id: string): void {
    if (!this.stops.has(id)) return;
    this.append({ delete: id });
    this.stops.delete(id);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private append(record: JournalRecord): void {
    if (this.needsRewrite) this.rewrite();
    const fd = this.fd;
    if (fd === null) throw new Error(`${this.file} is closed`);
    try {
      writeSync(fd, `${JSON.stringify(record)}\n`);
      fdatasyncSync(fd);
    } catch (error) {
      // Part of the record may be in the file: the next append starts with a clean rewrite.
      this.needsRewrite = true;
      throw new Error(`cannot write ${this.file}: ${(error as Error).message}`);
    }
    this.records++;
    if (this.records > COMPACT_AFTER_RECORDS && this.records > 2 * this.stops.size) this.rewrite();
  }

  /** Replaces the journal by one save record per pending stop, atomically, and reopens it for appending. */
  private rewrite(): void {
    let text = '';
    for (const stop of this.stops.values()) text += `${JSON.stringify({ save: stop } satisfies JournalRecord)}\n`;
    try {
      writeFileAtomically(this.file, text);
    } catch (error) {
      throw new Error(`cannot write ${this.file}: ${(error as Error).message} (is the state directory there and writable?)`);
    }
    if (this.fd !== null) closeSync(this.fd);
    this.fd = openSync(this.file, 'a', 0o600);
    fchmodSync(this.fd, 0o600);
    this.records = this.stops.size;
    this.needsRewrite = false;
  }

  /** Reads the journal into `stops`, reporting (and setting aside) what it cannot use. */
  private read(onProblem: (message: string) => void): void {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      onProblem(
        `cannot read ${this.file} (${(error as Error).message}): the stop commands it held are lost; ` +
          `it is moved to ${this.file}${DAMAGED_SUFFIX}: check by hand which doors are still open`,
      );
      renameSync(this.file, `${this.file}${DAMAGED_SUFFIX}`);
      return;
    }
    const lines = text.split('\n');
    // Text after the last newline is a record knocktail was writing when it stopped: it never took
    // effect (save and delete return only once their record is complete on disk).
    const incomplete = lines.pop()!;
    const problems: string[] = [];
    lines.forEach((line, index) => {
      const record = parseRecord(line);
      if (typeof record === 'string') {
        problems.push(`${this.file}:${index + 1}: damaged record dropped (${record}): ${excerpt(line)}`);
      } else if ('save' in record) {
        this.stops.set(record.save.id, record.save);
      } else {
        this.stops.delete(record.delete);
      }
    });
    if (incomplete !== '') {
      problems.push(`${this.file}:${lines.length + 1}: incomplete last record dropped (knocktail stopped while writing it, before it took effect): ${excerpt(incomplete)}`);
    }
    if (problems.length === 0) return;
    copyFileSync(this.file, `${this.file}${DAMAGED_SUFFIX}`);
    for (const problem of problems) onProblem(problem);
    onProblem(
      `${this.file}: ${problems.length} damaged record(s) dropped, ${this.stops.size} pending stop(s) kept; ` +
        `the damaged file is kept as ${this.file}${DAMAGED_SUFFIX}: if a dropped record was a stop command, run it by hand`,
    );
  }
}

/** The record on a journal line, or why it is not one. */
function parseRecord(line: string): JournalRecord | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return 'not JSON';
  }
  if (!isObject(value)) return 'not a record';
  if ('delete' in value) return typeof value.delete === 'string' && value.delete !== '' ? { delete: value.delete } : 'bad stop id';
  if (!('save' in value)) return 'neither save nor delete';
  const stop = value.save;
  if (!isObject(stop)) return 'bad stop';
  for (const field of ['id', 'door', 'ip', 'command'] as const) {
    if (typeof stop[field] !== 'string') return `bad ${field}`;
  }
  for (const field of ['due', 'openedAt', 'section', 'limitMs'] as const) {
    if (typeof stop[field] !== 'number' || !Number.isFinite(stop[field])) return `bad ${field}`;
  }
  if (!isObject(stop.env) || !Object.values(stop.env).every((v) => typeof v === 'string')) return 'bad env';
  if (stop.port !== undefined && !(Number.isInteger(stop.port) && (stop.port as number) >= 1 && (stop.port as number) <= 65535)) return 'bad port';
  if (stop.id === '') return 'bad id';
  if (stop.firewall !== undefined && typeof stop.firewall !== 'string') return 'bad firewall';
  return {
    save: {
      id: stop.id as string,
      door: stop.door as string,
      ip: stop.ip as string,
      ...(typeof stop.firewall === 'string' ? { firewall: stop.firewall } : {}),
      command: stop.command as string,
      env: { ...(stop.env as Record<string, string>) },
      section: stop.section as number,
      due: stop.due as number,
      openedAt: stop.openedAt as number,
      limitMs: stop.limitMs as number,
      ...(stop.port === undefined ? {} : { port: stop.port as number }),
    },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function excerpt(text: string): string {
  return text.length > EXCERPT_LENGTH ? `${text.slice(0, EXCERPT_LENGTH)}…` : text;
}
