/**
 * Lossless log following (docs/design.md, "Where state lives"). A file is known by its (device, inode), read through
 * its own fd with positional reads, and woken by inotify on its directory plus a short poll.
 *
 * - Rotation: when the path names another file (rename, delete, a re-pointed symlink) the old fd is
 *   kept and drained until it has been quiet for `rotationGraceMs` (rsyslog writes to the renamed
 *   file until its HUP). Each wake-up snapshots the new file's size first, drains the old files to
 *   their end, then reads the new file up to the snapshot: with one writer, nothing written to the new
 *   file can overtake what was written to the old one.
 * - Truncation (copytruncate): size < offset, or the file's first bytes differ from what was read
 *   before; checked on every wake-up and again after every read (a regrowth to the same size or
 *   beyond is caught too). The file is then read again from byte 0.
 * - Lines are framed as every log input frames them (LineFramer), so a UTF-8 character split across
 *   writes arrives whole. A partial line is not buffered: the offset stays at its first byte and it
 *   is read again once its newline is there, so memory is bounded by the read buffer.
 * - The cursor lists every open file (old ones still draining, then the current one) with its
 *   offset and a hash of its head, so a restart resumes exactly, also across a rotation while stopped
 *   (followed-file.ts finds the files again).
 */
import { closeSync, fstatSync, readSync, statSync, watch, type BigIntStats, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { JsonStateFile } from '../durable.js';
import { cursorEntryOf, FileFinder, type FollowedFile, headUnchanged, isSavedCursor, isSystemError, openFollowedFile, type SavedCursor, sameFile } from './followed-file.js';
import { LineFramer, type LineSink } from './line-framer.js';

export interface FollowerOptions {
  /** As configured; a relative path is resolved once against the cwd at construction. May be a symlink. */
  path: string;
  /** Bytes before the '\n'; a longer line is dropped (counted, one warning) and never buffered. */
  maxLineLength: number;
  /** Where the position is persisted; null = nowhere. */
  cursorFile: string | null;
  /** Ignore a saved cursor and start at the end of the file. */
  fromEnd: boolean;
  /** Without a saved cursor, read the file from its start (a file that appeared while knocktail ran) instead of its end. */
  fromStartWithoutCursor?: boolean;
  /**
   * The complete lines, in file order. While it handles them, the position already counts them as read, so a
   * cursor persisted meanwhile does not read them again; persistCursor(at) saves a position inside them.
   */
  lines: LineSink;
  /** Rotation, truncation, dropped lines, a missing file, an unusable cursor, I/O errors. */
  onWarning: (message: string) => void;
  /** Fallback poll (default 250 ms); inotify normally wakes the follower first. */
  pollIntervalMs?: number;
  /** How long an old file must stay quiet before it is closed after the path moved on (default 10 s). */
  rotationGraceMs?: number;
}

export interface FollowerStatus {
  /** The followed path, absolute. */
  path: string;
  /** Identity of the file the path names (null while it is missing). */
  dev: string | null;
  ino: string | null;
  /** Bytes of the current file consumed so far, and its size when last checked. */
  offset: number;
  size: number;
  /** Bytes not yet consumed in the current file and in old files still being drained. */
  lagBytes: number;
  /** Lines over MaxLineLength, skipped unread. */
  droppedLines: number;
  rotations: number;
  truncations: number;
  missing: boolean;
  /** Old files (the path has moved on) still being drained. */
  oldFilesDraining: number;
}

const MIN_READ_BUFFER_BYTES = 256 * 1024;
/** Bytes read per wake-up before yielding to the event loop (timers must not starve during a catch-up). */
const WAKE_BUDGET_BYTES = 4 * 1024 * 1024;
const NEWLINE = 0x0a;

type State = 'new' | 'running' | 'stopping' | 'stopped';

export class LogFollower {
  private readonly path: string;
  private readonly directory: string;
  private readonly maxLineLength: number;
  private readonly framed: LineSink;
  private readonly onWarning: (message: string) => void;
  private readonly pollIntervalMs: number;
  private readonly rotationGraceMs: number;
  private readonly fromEnd: boolean;
  private readonly fromStartWithoutCursor: boolean;
  private readonly cursorStore: JsonStateFile | null;
  private readonly finder: FileFinder;
  /** Read buffer, longer than any deliverable line so that every full read makes progress. */
  private readonly buffer: Buffer;

  private state: State = 'new';
  private current: FollowedFile | null = null;
  /** Old files, oldest first, drained before the current one. */
  private retiring: FollowedFile[] = [];
  private missing = false;
  private readonly watchers = new Map<string, FSWatcher>();
  private pollTimer: NodeJS.Timeout | null = null;
  private wakeScheduled = false;
  /**
   * The path may name another file now: set by the poll and by directory events other than a file's content
   * changing (rename, create, delete), so a wake-up for new lines alone does not stat the path again.
   */
  private pathMayHaveMoved = true;
  private inWake = false;
  private budget = 0;
  /** Last I/O problem reported, so that a persisting one is reported once. */
  private lastProblem: string | null = null;

  /** The file whose lines are being handed on. */
  private reading: FollowedFile | null = null;
  private droppedLines = 0;
  private rotations = 0;
  private truncations = 0;

  constructor(options: FollowerOptions) {
    if (!Number.isSafeInteger(options.maxLineLength) || options.maxLineLength < 1) {
      throw new RangeError(`maxLineLength must be a positive integer, not ${options.maxLineLength}`);
    }
    this.path = resolve(options.path);
    this.directory = dirname(this.path);
    this.maxLineLength = options.maxLineLength;
    const consumer = options.lines;
    // The position moves before the consumer sees the lines (a cursor saved meanwhile counts them as read).
    this.framed = {
      block: (text, base) => {
        this.reading!.offset = base + text.length + 1;
        consumer.block(text, base);
      },
      line: (text, end) => {
        this.reading!.offset = end;
        consumer.line(text, end);
      },
      longLine: (at) => {
        this.droppedLines++;
        this.onWarning(`${this.reading!.name}: line at byte ${at} is longer than ${this.maxLineLength} bytes (MaxLineLength); dropped`);
        consumer.longLine(at);
      },
    };
    this.onWarning = options.onWarning;
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.rotationGraceMs = options.rotationGraceMs ?? 10_000;
    this.fromEnd = options.fromEnd;
    this.fromStartWithoutCursor = options.fromStartWithoutCursor ?? false;
    this.cursorStore = options.cursorFile === null ? null : new JsonStateFile(resolve(options.cursorFile), 'cursor file');
    this.buffer = Buffer.allocUnsafe(Math.max(MIN_READ_BUFFER_BYTES, options.maxLineLength + 2));
    this.finder = new FileFinder(this.path, this.maxLineLength);
  }

  /** Opens the file at its saved position (or its end) and starts following; resolves also when the file does not exist yet. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`follower of ${this.path} was already started`);
    this.state = 'running';
    this.restorePosition();
    this.syncWatchers();
    this.pollTimer = setInterval(() => {
      this.syncWatchers();
      this.scheduleWake();
    }, this.pollIntervalMs);
    this.wake(); // at once: the status is right when start() resolves, and a catch-up begins (within the budget)
  }

  /** Drains what is readable, persists the cursor and releases fds, watchers and timers. */
  async stop(): Promise<void> {
    if (this.state === 'new') this.state = 'stopped';
    if (this.state !== 'running') return;
    this.state = 'stopping';
    if (this.pollTimer) clearInterval(this.pollTimer);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    // Called from inside onLine: let that wake-up finish before the cursor is taken (they share the read buffer).
    while (this.inWake) await new Promise((done) => setImmediate(done));
    // No final read: a backlog would delay the stop and open doors during shutdown. The cursor keeps the
    // position, and the next start reads from there.
    this.persistCursor();
    for (const file of this.openFiles()) closeSync(file.fd);
    this.current = null;
    this.retiring = [];
    this.state = 'stopped';
  }

  status(): FollowerStatus {
    const current = this.current;
    let lagBytes = 0;
    for (const file of this.openFiles()) lagBytes += Math.max(0, file.size - file.offset);
    return {
      path: this.path,
      dev: current ? String(current.dev) : null,
      ino: current ? String(current.ino) : null,
      offset: current?.offset ?? 0,
      size: current?.size ?? 0,
      lagBytes,
      droppedLines: this.droppedLines,
      rotations: this.rotations,
      truncations: this.truncations,
      missing: this.missing,
      oldFilesDraining: this.retiring.length,
    };
  }

  /**
   * Saves the position of every open file (synchronous, atomic). `at`, while lines are being handed on: save the
   * file they come from at this offset instead (the end of the line being handled). Failures go to onWarning.
   */
  persistCursor(at?: number): void {
    if (this.cursorStore === null || this.state === 'new' || this.state === 'stopped') return;
    const files = this.openFiles().map((file) => {
      const entry = cursorEntryOf(file);
      if (at !== undefined && file === this.reading) entry.offset = at;
      return entry;
    });
    const cursor: SavedCursor = { version: 1, path: this.path, files };
    try {
      this.cursorStore.save(cursor);
    } catch (error) {
      this.reportProblem((error as Error).message);
    }
  }

  // ── waking up ────────────────────────────────────────────────────────────────────────────────

  private scheduleWake(pathMayHaveMoved = true): void {
    if (pathMayHaveMoved) this.pathMayHaveMoved = true;
    if (this.wakeScheduled || this.state !== 'running') return;
    this.wakeScheduled = true;
    setImmediate(() => this.wake());
  }

  /** Notices what the path names now, then reads: old files to their end first, the current file up to its size before that. */
  private wake(): void {
    this.wakeScheduled = false;
    if (this.state !== 'running') return;
    this.inWake = true;
    this.budget = WAKE_BUDGET_BYTES;
    try {
      if (this.pathMayHaveMoved) {
        this.followPath();
        this.pathMayHaveMoved = false;
      }
      const current = this.current;
      // Up to the size seen now: what the writer adds meanwhile waits for the next wake-up, after the old files.
      const currentLimit = current ? fstatSync(current.fd).size : 0;
      let more = false;
      for (const old of this.retiring) more ||= this.drain(old, Infinity);
      if (current && !more) more = this.drain(current, currentLimit);
      this.closeQuietOldFiles(Date.now());
      if (more) this.scheduleWake(false);
      this.lastProblem = null;
    } catch (error) {
      // fs errors (EIO, ESTALE, EACCES…) are reported and retried at the next wake-up; anything else is a bug.
      if (!isSystemError(error)) throw error;
      this.reportProblem(`${this.path}: ${(error as Error).message}`);
    } finally {
      this.inWake = false;
    }
  }

  /** Compares the file the path names with the current one: rotation, disappearance, (re)appearance. */
  private followPath(): void {
    let stats: BigIntStats | undefined;
    try {
      stats = statSync(this.path, { bigint: true, throwIfNoEntry: false });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOTDIR') throw error;
    }
    if (stats === undefined || !stats.isFile()) {
      if (!this.missing) {
        this.missing = true;
        this.onWarning(stats === undefined
          ? `${this.path} does not exist; waiting for it to appear`
          : `${this.path} is not a regular file; waiting for a regular file there`);
      }
      if (this.current) {
        this.retire(this.current);
        this.rotations++;
      }
      this.current = null;
      return;
    }
    this.missing = false;
    if (this.current && sameFile(this.current, stats)) return;
    const oldCurrent = this.current;
    if (oldCurrent) {
      this.retire(oldCurrent);
      this.rotations++;
      this.current = null; // until the new file is open (opening may fail; the next wake-up tries again)
    }
    // The path may name an old file again (a symlink pointed back): continue it rather than re-read it.
    const returning = this.retiring.findIndex((file) => sameFile(file, stats));
    this.current = returning >= 0 ? this.retiring.splice(returning, 1)[0]! : openFollowedFile(this.path, 0, this.maxLineLength);
    if (oldCurrent) {
      this.onWarning(`${this.path} was rotated: now inode ${this.current.ino}; still reading the old file (inode ${oldCurrent.ino}) until it has been quiet for ${this.rotationGraceMs / 1000} s`);
    }
    this.syncWatchers();
  }

  private retire(file: FollowedFile): void {
    file.lastGrowth = Date.now();
    this.retiring.push(file);
  }

  /** Closes old files that stayed quiet for the grace period (the writer has moved on). */
  private closeQuietOldFiles(now: number): void {
    const quiet = this.retiring.filter((file) => now - file.lastGrowth >= this.rotationGraceMs);
    if (quiet.length === 0) return;
    for (const file of quiet) {
      if (file.size > file.offset && !file.framer.skipping) this.finishLastLine(file);
      closeSync(file.fd);
    }
    this.retiring = this.retiring.filter((file) => !quiet.includes(file));
    this.syncWatchers();
  }

  // ── reading ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Reads `file` from its offset up to `limit` (or its end) within the wake-up's budget. Returns true when it
   * stopped early: budget spent, the limit below the current size, or a truncated file's copy to read first.
   */
  private drain(file: FollowedFile, limit: number): boolean {
    for (;;) {
      const size = fstatSync(file.fd).size;
      if (size !== file.size) file.lastGrowth = Date.now();
      file.size = size;
      if ((file.size < file.offset || !headUnchanged(file)) && this.restartAtZero(file)) return true;
      const end = Math.min(file.size, limit);
      if (file.offset >= end) return end < file.size;
      if (this.budget <= 0) return true;
      const position = file.offset;
      const wanted = Math.min(this.buffer.length, end - position);
      const count = readSync(file.fd, this.buffer, 0, wanted, position);
      if (count === 0) return false;
      // Truncated and rewritten between the check above and this read? Then these bytes are not at `position`.
      if (!headUnchanged(file)) {
        if (this.restartAtZero(file)) return true;
        continue;
      }
      this.budget -= count;
      this.consume(file, position, count);
      if (count < wanted) return false;
      // Up to `end` already: what is left there is a partial line, read again at the next wake-up.
      if (position + count >= end) return end < file.size;
    }
  }

  /** Hands on the complete lines of buffer[0, count), read at `position`, advancing file.offset. */
  private consume(file: FollowedFile, position: number, count: number): void {
    this.reading = file;
    try {
      file.offset = position + file.framer.frame(this.buffer.subarray(0, count), position, this.framed);
    } finally {
      this.reading = null;
    }
  }

  /** An old file the writer has left ends without a newline: its last line is a line all the same (as in replay). */
  private finishLastLine(file: FollowedFile): void {
    const length = file.size - file.offset;
    if (length > this.maxLineLength) {
      this.reading = file;
      this.framed.longLine(file.offset);
      this.reading = null;
      return;
    }
    const count = readSync(file.fd, this.buffer, 0, length, file.offset);
    this.buffer[count] = NEWLINE;
    this.consume(file, file.offset, count + 1);
  }

  /**
   * After a truncation the file is read again from byte 0. What it held past our offset survives only in
   * logrotate's copy (a sibling with the same head): that copy is queued before the file and drained first.
   * Returns true when a copy was queued.
   */
  private restartAtZero(file: FollowedFile): boolean {
    this.truncations++;
    const copy = file.offset > 0 && file.headLength > 0 ? this.findCopy(file) : null;
    this.onWarning(`${file.name} was truncated or rewritten in place (size ${file.size}, reading at byte ${file.offset}): reading it again from the start`
      + (copy ? `, after the rest of its copy ${copy.name}` : ''));
    file.offset = 0;
    file.headLength = 0;
    file.framer = new LineFramer(this.maxLineLength);
    if (copy === null) return false;
    const index = this.retiring.indexOf(file);
    this.retiring.splice(index >= 0 ? index : this.retiring.length, 0, copy);
    this.syncWatchers();
    return true;
  }

  /** A rotated sibling with the same head and at least our offset: the copy made just before the truncation. */
  private findCopy(file: FollowedFile): FollowedFile | null {
    const openIdentities = new Set(this.openFiles().map((open) => `${open.dev}:${open.ino}`));
    const copy = this.finder.copyOf(file, openIdentities);
    if (copy && copy.size === copy.offset) {
      closeSync(copy.fd); // it holds nothing we have not read
      return null;
    }
    return copy;
  }

  // ── the start position and the cursor ────────────────────────────────────────────────────────

  private openFiles(): FollowedFile[] {
    return this.current ? [...this.retiring, this.current] : [...this.retiring];
  }

  /** Where following begins: the saved cursor unless fromEnd or unusable, else the end of the file. */
  private restorePosition(): void {
    const saved = this.fromEnd ? null : this.loadCursor();
    try {
      if (saved !== null) this.restoreFromCursor(saved);
      else if (this.fromEnd || !this.fromStartWithoutCursor) this.openAtEnd();
      // else: followPath opens the file at byte 0
    } catch (error) {
      if (!isSystemError(error)) throw error;
      this.reportProblem(`${this.path}: ${(error as Error).message}`);
    }
  }

  private loadCursor(): SavedCursor | null {
    if (this.cursorStore === null) return null;
    const file = this.cursorStore.file;
    let value: unknown;
    try {
      value = this.cursorStore.load();
    } catch (error) {
      this.onWarning(`${(error as Error).message}; starting at the end of ${this.path}`);
      return null;
    }
    if (value === null) return null;
    if (!isSavedCursor(value)) {
      this.onWarning(`the cursor file ${file} is not a knocktail file cursor (damaged?); starting at the end of ${this.path}; delete it to silence this warning`);
      return null;
    }
    if (value.path !== this.path) {
      this.onWarning(`the cursor file ${file} belongs to ${value.path}, not ${this.path}; starting at the end of ${this.path}`);
      return null;
    }
    return value;
  }

  /** Starts after the last complete line, so a line being written when we start is delivered whole. */
  private openAtEnd(): void {
    const stats = statSync(this.path, { throwIfNoEntry: false });
    if (stats === undefined || !stats.isFile()) return; // followPath reports it and reads the file from 0 once it appears
    const file = openFollowedFile(this.path, 0, this.maxLineLength);
    const windowLength = Math.min(file.size, this.maxLineLength + 1);
    const windowStart = file.size - windowLength;
    const count = readSync(file.fd, this.buffer, 0, windowLength, windowStart);
    const newline = this.buffer.subarray(0, count).lastIndexOf(NEWLINE);
    if (newline >= 0) file.offset = windowStart + newline + 1;
    else if (windowStart > 0) {
      file.offset = file.size;
      file.framer.skipping = true; // the tail of a line already longer than the limit
    }
    this.current = file;
  }

  /**
   * Reopens every file of the cursor where it is now (its old name, the path, or a rotated sibling such as
   * `path.1` or `path-20260101`), matched by dev/ino and head hash. Found files continue at their offsets; a
   * new file at the path (rotated while stopped) is read from its start after them.
   */
  private restoreFromCursor(saved: SavedCursor): void {
    const claimed = new Set<string>();
    const restored: FollowedFile[] = [];
    for (const entry of saved.files) {
      const file = this.finder.locate(entry, claimed);
      if (file) {
        restored.push(file);
        if (file.name !== entry.name || file.ino !== BigInt(entry.ino)) {
          this.onWarning(`${this.path} was rotated: resuming ${file.name} at byte ${file.offset} before newer data`);
        }
      } else if (entry.offset < entry.size) {
        this.onWarning(`${entry.name} (inode ${entry.ino}) is gone (compressed or deleted while stopped?): its last ${entry.size - entry.offset} bytes are lost`);
      }
    }
    const stats = statSync(this.path, { bigint: true, throwIfNoEntry: false });
    const atPath = stats?.isFile() ? restored.findIndex((file) => sameFile(file, stats)) : -1;
    if (atPath >= 0) this.current = restored.splice(atPath, 1)[0]!;
    for (const file of restored) this.retire(file);
    if (this.current === null && stats?.isFile()) {
      if (restored.length === 0 && saved.files.length > 0) {
        this.onWarning(`${this.path} is not the file the cursor points to (replaced, or its inode reused): reading it from the start`);
      }
      this.current = openFollowedFile(this.path, 0, this.maxLineLength);
    }
  }

  // ── watching ─────────────────────────────────────────────────────────────────────────────────

  /** inotify on the path's directory and on the directories of the open files (a symlink's target lives elsewhere). */
  private syncWatchers(): void {
    if (this.state !== 'running') return;
    const wanted = new Set([this.directory, ...this.openFiles().map((file) => dirname(file.name))]);
    for (const [directory, watcher] of this.watchers) {
      if (!wanted.has(directory)) {
        watcher.close();
        this.watchers.delete(directory);
      }
    }
    for (const directory of wanted) {
      if (this.watchers.has(directory)) continue;
      try {
        const watcher = watch(directory, (event) => this.scheduleWake(event !== 'change'));
        watcher.on('error', () => {
          watcher.close();
          this.watchers.delete(directory); // the poll re-creates it once the directory is back
        });
        this.watchers.set(directory, watcher);
      } catch {
        // The directory does not exist (yet): the poll keeps trying.
      }
    }
  }

  private reportProblem(message: string): void {
    if (message === this.lastProblem) return;
    this.lastProblem = message;
    this.onWarning(message);
  }
}
