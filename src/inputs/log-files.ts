/**
 * A FirewallLog pattern (config/log-pattern.ts), typically a syslog collector's one file per firewall: every file it
 * matches is followed by a LogFileInput of its own, with its own cursor, rotation handling and time rules (each file
 * is an input id of its own). Discovery lists the pattern's directories every `scanIntervalMs` (README, "Many
 * firewalls, one knocktail"):
 *
 * - At the first start (no state for this pattern yet) the files found are read like a single FirewallLog: from a
 *   saved position, else from their end. Every file found after that (a new firewall, a file created while
 *   knocktail was stopped, one let go and back) is read from its start; MaxKnockAge keeps its old lines from
 *   opening anything.
 * - A file gone for `letGoAfterMs` and read to its end is let go, its cursor deleted; rotations keep the path
 *   missing for moments only, and the follower reads the rotated file to its end meanwhile.
 * - At most `maxFiles` files are followed; the files beyond are named in a warning (at most once a minute) and in
 *   the status, and followed from their start once there is room.
 * - A file whose `{firewall}` part is neither an address nor a host name, or that anybody may write, is refused
 *   with a warning naming it: only canonical names reach %FIREWALL%.
 */
import { createHash } from 'node:crypto';
import { readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalFirewall } from '../address.js';
import type { LogPattern } from '../config/log-pattern.js';
import type { Options } from '../config/types.js';
import type { CompiledFormat } from '../formats/logformat.js';
import type { DecoderCounters } from '../formats/registry.js';
import { JsonStateFile } from '../durable.js';
import type { PortWatch, Watch } from '../watch.js';
import type { HitSink, Input, InputStatus } from './input.js';
import { cursorFileName, LogFileInput, type LogFileStatus } from './log-file.js';

export interface LogFilesInputOptions {
  pattern: LogPattern;
  formats: readonly CompiledFormat[];
  watch: PortWatch | null;
  /** StateDir/cursors, or null to keep no state. */
  cursorDir: string | null;
  /** The files found at start-up begin at their end, whatever was saved (files found later still from their start). */
  fromEnd: boolean;
  maxLineLength: number;
  bootTime: number;
  /** MaxFollowedFiles. */
  maxFiles: number;
  /** AllowForgeableLog: follow files that anybody may write into. */
  allowForgeable: boolean;
  onWarning: (message: string) => void;
  /** Files started and let go. */
  onInfo: (message: string) => void;
  /** How often the directories are listed (default 1 s). */
  scanIntervalMs?: number;
  /** How long a file must be gone before it is let go (default 60 s). */
  letGoAfterMs?: number;
}

interface Member {
  input: LogFileInput;
  firewall: string | null;
  /** When the file was first found missing (null while it is there). */
  goneSince: number | null;
}

/** A followed file, for status. */
export interface FollowedFileStatus extends LogFileStatus {
  firewall: string | null;
}

export interface LogFilesStatus extends InputStatus {
  pattern: string;
  maxFiles: number;
  files: FollowedFileStatus[];
  /** Files of the pattern beyond MaxFollowedFiles: how many, and the first few. */
  notFollowed: { count: number; first: string[] };
  /** Files refused (a {firewall} part that is no name, writable by anybody): how many, and the first few. */
  refused: { count: number; first: Array<{ path: string; reason: string }> };
  /** The lines of every file followed so far (files let go included). */
  decoder: DecoderCounters;
}

const SCAN_INTERVAL_MS = 1000;
const LET_GO_AFTER_MS = 60_000;
/** Positions saved per turn of the event loop by the periodic save. */
const SAVES_PER_TURN = 4;
/** The warning about files beyond MaxFollowedFiles comes at most this often. */
const LIMIT_WARNING_EVERY_MS = 60_000;
/** Files listed by name in a warning or the status; the others are counted. */
const NAMED = 5;
const LISTED = 20;

export class LogFilesInput implements Input {
  readonly id: string;
  private readonly pattern: LogPattern;
  private readonly members = new Map<string, Member>();
  private notFollowed: string[] = [];
  private readonly refused = new Map<string, string>();
  private sink: HitSink | null = null;
  private watchValue: PortWatch | null;
  private maxFiles: number;
  /** Set once the files found at start-up run: every file found after that is new, read from its start. */
  private running = false;
  /** This pattern was followed before (its state file exists): files without a position are new ones. */
  private followedBefore = false;
  private readonly state: JsonStateFile | null;
  private scanTimer: NodeJS.Timeout | null = null;
  /** The scan under way (or the last one); scans never overlap, and a scan asked for meanwhile runs after it once. */
  private scanning: Promise<void> = Promise.resolve();
  private scanQueued = false;
  /** Files whose periodic save is still to come, and the turn of the event loop that saves the next few. */
  private unsaved: Member[] = [];
  private saving: NodeJS.Immediate | null = null;
  private lastLimitWarning = -Infinity;
  /** Counters of the files let go, so that the totals never go back. */
  private readonly goneCounters: DecoderCounters = { lines: 0, matched: 0, ignored: 0, notKnock: 0, missed: 0, skipped: 0 };

  constructor(private readonly options: LogFilesInputOptions) {
    this.pattern = options.pattern;
    this.id = options.pattern.text;
    this.watchValue = options.watch;
    this.maxFiles = options.maxFiles;
    this.state = options.cursorDir === null ? null : new JsonStateFile(join(options.cursorDir, patternStateFileName(this.id)), 'pattern state file');
  }

  async start(sink: HitSink): Promise<void> {
    this.sink = sink;
    this.followedBefore = this.loadState();
    await this.scan();
    this.running = true;
    this.saveState();
    this.scanTimer = setInterval(() => this.queueScan(), this.options.scanIntervalMs ?? SCAN_INTERVAL_MS);
  }

  async stop(): Promise<void> {
    if (this.scanTimer !== null) clearInterval(this.scanTimer);
    this.scanTimer = null;
    await this.scanning;
    if (this.saving !== null) clearImmediate(this.saving);
    this.saving = null;
    this.unsaved = [];
    this.running = false;
    for (const member of this.members.values()) await member.input.stop();
    this.members.clear();
    this.sink = null;
  }

  /** Whether hits with this input id come from here (one of the files followed). */
  covers(hitInput: string): boolean {
    return this.members.has(hitInput);
  }

  /**
   * Saves the position of the file `hitInput` now (an open's knock: only that file). Without it (the periodic
   * save), every file's, a few per turn of the event loop: each save is fsync'd, and a thousand of them in one go
   * would hold up reading for a second.
   */
  persist(hitInput?: string): void {
    const member = hitInput === undefined ? undefined : this.members.get(hitInput);
    if (member !== undefined) {
      member.input.persist();
      return;
    }
    this.unsaved = [...this.members.values()];
    this.saveSomeLater();
  }

  private saveSomeLater(): void {
    if (this.saving !== null || this.unsaved.length === 0) return;
    this.saving = setImmediate(() => {
      this.saving = null;
      for (const member of this.unsaved.splice(0, SAVES_PER_TURN)) member.input.persist();
      this.saveSomeLater();
    });
  }

  caughtUp(): boolean {
    for (const member of this.members.values()) if (!member.input.caughtUp()) return false;
    return true;
  }

  updateWatch(watch: Watch): void {
    this.watchValue = watch;
    for (const member of this.members.values()) member.input.updateWatch(watch);
  }

  /** A reload kept this pattern: MaxFollowedFiles may have changed (a lower bound lets the last files go). */
  updateOptions(options: Options): void {
    this.maxFiles = options.maxFollowedFiles;
    this.queueScan();
  }

  status(): LogFilesStatus {
    const files = [...this.members].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, member]) => ({ ...member.input.status(), firewall: member.firewall }));
    const decoder = { ...this.goneCounters };
    for (const file of files) addCounters(decoder, file.decoder);
    return {
      id: this.id,
      kind: 'files',
      pattern: this.id,
      maxFiles: this.maxFiles,
      files,
      notFollowed: { count: this.notFollowed.length, first: this.notFollowed.slice(0, LISTED) },
      refused: { count: this.refused.size, first: [...this.refused].slice(0, LISTED).map(([path, reason]) => ({ path, reason })) },
      decoder,
    };
  }

  private queueScan(): void {
    if (this.scanQueued) return;
    this.scanQueued = true;
    this.scanning = this.scanning.then(() => {
      this.scanQueued = false;
      return this.scan();
    });
  }

  /** Lists the pattern's files: starts the new ones (room permitting), lets go of those gone long enough. */
  private async scan(): Promise<void> {
    if (this.sink === null) return;
    const found = this.discover();
    const now = Date.now();
    await this.letGo(found, now);
    const waiting: string[] = [];
    for (const path of found) {
      if (this.members.has(path)) continue;
      const firewall = this.firewallOf(path);
      if (firewall === undefined) continue;
      if (this.members.size >= this.maxFiles) waiting.push(path);
      else await this.follow(path, firewall);
    }
    for (const path of this.refused.keys()) if (!found.has(path)) this.refused.delete(path);
    this.notFollowed = waiting;
    if (waiting.length > 0 && now - this.lastLimitWarning >= LIMIT_WARNING_EVERY_MS) {
      this.lastLimitWarning = now;
      const named = waiting.slice(0, NAMED).join(', ') + (waiting.length > NAMED ? `, and ${waiting.length - NAMED} more` : '');
      this.options.onWarning(
        `${this.id}: ${waiting.length} file(s) not followed, because ${this.maxFiles} (MaxFollowedFiles) are followed already: ${named}; ` +
          'raise MaxFollowedFiles (or narrow the pattern) and reload; knocks logged there are not seen',
      );
    }
  }

  /** The files of the pattern there now, sorted (regular files; rotated and compressed ones never match). */
  private discover(): Set<string> {
    const found: string[] = [];
    const { segments, literals } = this.pattern;
    const last = segments.length - 1;
    const walk = (directory: string, depth: number): void => {
      const literal = literals[depth]!;
      let names: string[];
      try {
        names = literal !== null ? [literal] : readdirSync(directory);
      } catch {
        return; // not there (yet), or unreadable: nothing to follow below it
      }
      for (const name of names) {
        if (literal === null && !segments[depth]!.test(name)) continue;
        const path = join(directory, name);
        if (depth < last) walk(path, depth + 1);
        else if (this.pattern.match(path) !== null && isRegularFile(path)) found.push(path);
      }
    };
    walk(this.pattern.base, 0);
    return new Set(found.sort());
  }

  /**
   * The canonical firewall of a file not followed yet (null when the pattern names none), or undefined when it is
   * refused: reported once, and looked at again at every scan (a file made private is then followed).
   */
  private firewallOf(path: string): string | null | undefined {
    let reason: string | null = null;
    let firewall: string | null = null;
    if (this.pattern.hasFirewall) {
      const raw = this.pattern.match(path)!;
      firewall = canonicalFirewall(raw);
      if (firewall === null) reason = `its {firewall} part ${JSON.stringify(raw)} is neither an IP address nor a host name`;
    }
    if (reason === null && !this.options.allowForgeable && isWorldWritable(path)) reason = 'anybody may write into it, so anybody could knock (chmod o-w, or AllowForgeableLog = yes)';
    if (reason === null) {
      this.refused.delete(path);
      return firewall;
    }
    if (!this.refused.has(path)) this.options.onWarning(`${this.id}: not following ${path}: ${reason}`);
    this.refused.set(path, reason);
    return undefined;
  }

  private async follow(path: string, firewall: string | null): Promise<void> {
    const { options } = this;
    const input = new LogFileInput({
      path,
      formats: options.formats,
      watch: this.watchValue,
      cursorDir: options.cursorDir,
      // Found at start-up: as a single FirewallLog; found later: a new file, read from its start.
      fromEnd: !this.running && options.fromEnd,
      fromStartWithoutCursor: this.running || this.followedBefore,
      maxLineLength: options.maxLineLength,
      bootTime: options.bootTime,
      onWarning: options.onWarning,
      ...(firewall === null ? {} : { firewall }),
    });
    try {
      await input.start(this.sink!);
    } catch (error) {
      options.onWarning(`${this.id}: cannot follow ${path}: ${(error as Error).message}`);
      return;
    }
    this.members.set(path, { input, firewall, goneSince: null });
    if (this.running) options.onInfo(`${this.id}: following ${path}${firewall === null ? '' : ` (firewall ${firewall})`}`);
  }

  /** Lets go of files gone for letGoAfterMs and read to their end, and of the last ones when MaxFollowedFiles went down. */
  private async letGo(found: ReadonlySet<string>, now: number): Promise<void> {
    const after = this.options.letGoAfterMs ?? LET_GO_AFTER_MS;
    for (const [path, member] of this.members) {
      if (found.has(path)) {
        member.goneSince = null;
        continue;
      }
      member.goneSince ??= now;
      if (now - member.goneSince < after || !member.input.caughtUp()) continue;
      await this.release(path, member, true);
      this.options.onInfo(`${this.id}: let go of ${path}: gone for ${Math.round((now - member.goneSince) / 1000)} s`);
    }
    const excess = [...this.members.keys()].sort().slice(this.maxFiles);
    for (const path of excess) await this.release(path, this.members.get(path)!, false);
  }

  /** Stops following a file; `forget`: it is gone, and so is its cursor (should it come back, it is a new file). */
  private async release(path: string, member: Member, forget: boolean): Promise<void> {
    await member.input.stop();
    addCounters(this.goneCounters, member.input.status().decoder);
    this.members.delete(path);
    if (!forget || this.options.cursorDir === null) return;
    try {
      unlinkSync(join(this.options.cursorDir, cursorFileName(path)));
    } catch {
      // never saved, or already gone
    }
  }

  private loadState(): boolean {
    try {
      return this.state?.load() != null;
    } catch (error) {
      this.options.onWarning((error as Error).message);
      return false;
    }
  }

  private saveState(): void {
    try {
      this.state?.save({ version: 1, pattern: this.id });
    } catch (error) {
      this.options.onWarning(`${(error as Error).message}; after a restart, files that appeared meanwhile would be read from their end`);
    }
  }
}

/** The state file of a pattern (beside the cursors of its files, which are named by their paths). */
function patternStateFileName(pattern: string): string {
  return `pattern-${createHash('sha256').update(pattern).digest('hex').slice(0, 16)}.json`;
}

function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isWorldWritable(path: string): boolean {
  try {
    return (statSync(path).mode & 0o002) !== 0;
  } catch {
    return false;
  }
}

function addCounters(total: DecoderCounters, more: DecoderCounters): void {
  for (const key of Object.keys(total) as Array<keyof DecoderCounters>) total[key] += more[key];
}
