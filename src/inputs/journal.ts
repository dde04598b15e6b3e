/**
 * Kernel messages from the systemd journal, for hosts without kern.log: runs `journalctl -k -f -o json` and
 * passes on only entries the kernel itself logged. `-k` (`_TRANSPORT=kernel`) is not enough on its own: root
 * can write into /dev/kmsg and journald stores that with `_TRANSPORT=kernel` too, but the kernel forces such
 * records to a non-kernel facility (fixtures/real/forged/README.md, G08), so `SYSLOG_FACILITY` must be absent or 0.
 *
 * journald reads the kernel's records from /dev/kmsg; when the ring overwrote some before it read them, it logs
 * "Missed N kernel messages" itself (transport `driver`, MESSAGE_ID SD_MESSAGE_JOURNAL_MISSED). Those entries
 * are read too and counted as lost (the input's `lost`), so a flood that outran journald is never silent.
 *
 * The cursor of the last entry read is persisted; a restart (of knocktail or of a journalctl that exited)
 * resumes with `--after-cursor`, so nothing is lost or read twice. The first start reads only new entries.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { JsonStateFile } from '../durable.js';
import { type CompiledFormat, type DecodeContext, Outcome } from '../formats/logformat.js';
import { LineDecoder } from '../formats/registry.js';
import type { PortWatch, Watch } from '../watch.js';
import type { HitSink, Input, InputStatus, Loss } from './input.js';
import { RING_REMEDY } from './kmsg.js';

export interface KernelJournalEntry {
  /** MESSAGE as text (journalctl gives non-UTF-8 data as a byte array; it is decoded, invalid bytes become U+FFFD). */
  message: string;
  /** __REALTIME_TIMESTAMP in ms since the epoch (microseconds truncated). */
  time: number;
  /** The journal cursor of this entry. */
  cursor: string;
}

export interface JournalReaderOptions {
  /** Where the cursor is persisted; null = nowhere. */
  cursorFile: string | null;
  /** Ignore a saved cursor and start with new entries. */
  fromEnd: boolean;
  onEntry: (entry: KernelJournalEntry) => void;
  /** journalctl exiting (and being restarted), an unusable cursor, unexpected output. */
  onWarning: (message: string) => void;
  /** Appended to journalctl's arguments, e.g. `--directory=DIR` or `--file=FILE`. */
  journalctlArgs?: readonly string[];
  /** The journalctl to run (default: `journalctl` from PATH). */
  journalctl?: string;
  /** Delay before restarting a journalctl that exited (default 1 s), doubled at each failure up to maxRestartDelayMs. */
  restartDelayMs?: number;
  /** Default 60 s. */
  maxRestartDelayMs?: number;
}

export interface JournalStatus {
  running: boolean;
  pid: number | null;
  cursor: string | null;
  entries: number;
  /** Entries read but not passed on: not kernel transport, non-kernel facility, no usable MESSAGE or time. */
  rejected: number;
  /** Kernel messages journald reported it missed (the ring overwrote them before it read them). */
  missed: number;
  restarts: number;
}

/** Fields journalctl prints besides those it always prints (__CURSOR, __REALTIME_TIMESTAMP, …). */
const OUTPUT_FIELDS = 'MESSAGE,_TRANSPORT,SYSLOG_FACILITY,MESSAGE_ID';
/** journald's "Missed N kernel messages" (sd-messages.h, SD_MESSAGE_JOURNAL_MISSED). */
const MISSED_KERNEL_MESSAGES = 'e9bf28e6e834481bb6f48f548ad13606';
const STDERR_KEPT = 2000;

type State = 'new' | 'running' | 'stopping' | 'stopped';

export class JournalReader {
  private readonly options: JournalReaderOptions;
  private readonly journalctl: string;
  private readonly initialRestartDelay: number;
  private readonly maxRestartDelay: number;
  private readonly cursorStore: JsonStateFile | null;

  private state: State = 'new';
  private child: ChildProcess | null = null;
  private cursor: string | null = null;
  /** When following began: where a restart resumes while no entry (hence no cursor) has been seen. */
  private followingSince: number | null = null;
  private restartDelay: number;
  private restartTimer: NodeJS.Timeout | null = null;
  /** The child's output after its last newline. */
  private pendingOutput = '';
  private stderrTail = '';
  private linesFromChild = 0;

  private entries = 0;
  private rejected = 0;
  private missed = 0;
  private restarts = 0;

  constructor(options: JournalReaderOptions) {
    this.options = options;
    this.journalctl = options.journalctl ?? 'journalctl';
    this.initialRestartDelay = options.restartDelayMs ?? 1000;
    this.maxRestartDelay = options.maxRestartDelayMs ?? 60_000;
    this.restartDelay = this.initialRestartDelay;
    this.cursorStore = options.cursorFile === null ? null : new JsonStateFile(resolve(options.cursorFile), 'cursor file');
  }

  /** Starts journalctl; rejects when it cannot be run at all (not installed). */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('the journal reader was already started');
    if (!this.options.fromEnd) this.cursor = this.loadCursor();
    this.state = 'running';
    const child = this.launch();
    try {
      await once(child, 'spawn');
    } catch (error) {
      this.state = 'stopped';
      if (this.restartTimer) clearTimeout(this.restartTimer);
      throw new Error(`cannot run ${this.journalctl}: ${(error as Error).message} (is systemd's journalctl installed? else follow a log file)`);
    }
  }

  /** Stops journalctl (entries it already printed are still delivered) and persists the cursor. */
  async stop(): Promise<void> {
    if (this.state === 'new') this.state = 'stopped';
    if (this.state !== 'running') return;
    this.state = 'stopping';
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (child) {
      const closed = once(child, 'close');
      child.kill('SIGTERM');
      await closed;
    }
    this.persistCursor();
    this.state = 'stopped';
  }

  status(): JournalStatus {
    return {
      running: this.child !== null,
      pid: this.child?.pid ?? null,
      cursor: this.cursor,
      entries: this.entries,
      rejected: this.rejected,
      missed: this.missed,
      restarts: this.restarts,
    };
  }

  /** Saves the cursor of the last entry read (synchronous, atomic). Failures are reported through onWarning. */
  persistCursor(): void {
    if (this.cursorStore === null || this.cursor === null) return;
    try {
      this.cursorStore.save({ version: 1, cursor: this.cursor });
    } catch (error) {
      this.options.onWarning((error as Error).message);
    }
  }

  private loadCursor(): string | null {
    if (this.cursorStore === null) return null;
    try {
      const saved = this.cursorStore.load() as { version?: unknown; cursor?: unknown } | null;
      if (saved === null) return null;
      if (saved.version === 1 && typeof saved.cursor === 'string' && /^[\x21-\x7e]+$/.test(saved.cursor)) return saved.cursor;
      this.options.onWarning(`the cursor file ${this.cursorStore.file} is not a knocktail journal cursor (damaged?); reading new journal entries only`);
    } catch (error) {
      this.options.onWarning(`${(error as Error).message}; reading new journal entries only`);
    }
    return null;
  }

  private launch(): ChildProcess {
    const position = this.cursor !== null ? [`--after-cursor=${this.cursor}`]
      : this.followingSince !== null ? [`--since=@${Math.floor(this.followingSince / 1000)}`]
      : ['--lines=0'];
    this.followingSince ??= Date.now();
    // `--dmesg` is `_TRANSPORT=kernel` of this boot; journald's own reports of missed kernel messages join it.
    const matches = ['--boot', '_TRANSPORT=kernel', '+', `MESSAGE_ID=${MISSED_KERNEL_MESSAGES}`, '_TRANSPORT=driver'];
    const args = [...matches, '--follow', '--output=json', '--all', '--no-pager', '--quiet', `--output-fields=${OUTPUT_FIELDS}`, ...position, ...(this.options.journalctlArgs ?? [])];
    const child = spawn(this.journalctl, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.pendingOutput = '';
    this.stderrTail = '';
    this.linesFromChild = 0;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => this.receive(chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_KEPT);
    });
    child.on('error', (error) => this.ended(child, error.message));
    child.on('close', (code, signal) => this.ended(child, signal ? `killed by ${signal}` : `exit status ${code}`));
    return child;
  }

  private receive(chunk: string): void {
    const text = this.pendingOutput + chunk;
    let start = 0;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
      this.receiveLine(text.slice(start, newline));
      start = newline + 1;
    }
    this.pendingOutput = text.slice(start);
  }

  private receiveLine(line: string): void {
    if (line === '') return;
    this.linesFromChild++;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.rejected++;
      this.options.onWarning(`journalctl printed a line that is not JSON, ignored: ${line.slice(0, 200)}`);
      return;
    }
    if (typeof record.__CURSOR === 'string') this.cursor = record.__CURSOR;
    this.restartDelay = this.initialRestartDelay; // journalctl works: a later failure restarts it quickly again
    const missed = missedKernelMessages(record);
    if (missed !== null) {
      this.missed += missed;
      return;
    }
    const entry = kernelEntry(record);
    if (entry === null) {
      this.rejected++;
      return;
    }
    this.entries++;
    this.options.onEntry(entry);
  }

  /** journalctl exited or could not be started: restart it after a delay that grows while it keeps failing. */
  private ended(child: ChildProcess, why: string): void {
    if (child !== this.child) return; // 'error' and 'close' can both come
    this.child = null;
    if (this.state !== 'running') return;
    const stderr = this.stderrTail.trim();
    if (this.linesFromChild === 0 && this.cursor !== null && /cursor/i.test(stderr)) {
      this.options.onWarning(`journalctl rejected the cursor ${this.cursor} (${stderr}); continuing without it`);
      this.cursor = null;
    }
    const delay = this.restartDelay;
    this.restartDelay = Math.min(this.restartDelay * 2, this.maxRestartDelay);
    this.restarts++;
    this.options.onWarning(`journalctl exited (${why})${stderr ? `: ${stderr}` : ''}; restarting it in ${delay / 1000} s, after the last entry read`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.state === 'running') this.launch();
    }, delay);
  }
}

/** The entry if the kernel logged it (kernel transport and kernel facility) and it has a message and a time. */
function kernelEntry(record: Record<string, unknown>): KernelJournalEntry | null {
  if (fieldText(record._TRANSPORT) !== 'kernel') return null;
  if (record.SYSLOG_FACILITY !== undefined && fieldText(record.SYSLOG_FACILITY) !== '0') return null;
  const message = fieldText(record.MESSAGE);
  const realtime = fieldText(record.__REALTIME_TIMESTAMP);
  const cursor = record.__CURSOR;
  if (message === null || realtime === null || !/^\d+$/.test(realtime) || typeof cursor !== 'string') return null;
  return { message, time: Math.floor(Number(realtime) / 1000), cursor };
}

/** N of journald's own "Missed N kernel messages" entry, else null. Only journald writes the `driver` transport. */
function missedKernelMessages(record: Record<string, unknown>): number | null {
  if (fieldText(record._TRANSPORT) !== 'driver' || fieldText(record.MESSAGE_ID) !== MISSED_KERNEL_MESSAGES) return null;
  const match = /^Missed (\d{1,15}) kernel messages$/.exec(fieldText(record.MESSAGE) ?? '');
  return match === null ? null : Number(match[1]);
}

/** A field's value as text: a string, or a byte array (journalctl's form for non-UTF-8 data). Several values: null. */
function fieldText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((byte) => Number.isInteger(byte) && byte >= 0 && byte <= 255)) {
    return Buffer.from(value as number[]).toString('utf8');
  }
  return null;
}

export interface JournalInputOptions {
  formats: readonly CompiledFormat[];
  /** The ports that matter: entries for other ports are counted, not parsed (null: every entry is parsed). */
  watch: PortWatch | null;
  /** Directory for the cursor file (StateDir/cursors), or null not to persist it. */
  cursorDir: string | null;
  fromEnd: boolean;
  onWarning: (message: string) => void;
  /** Extra journalctl arguments (tests point it at a journal of their own). */
  journalctlArgs?: readonly string[];
}

/** `FirewallLog = journal`: kernel journal entries as KnockHits. */
export class JournalInput implements Input {
  readonly id = 'journal';
  private readonly reader: JournalReader;
  private sink: HitSink | null = null;
  private readonly decoder: LineDecoder;
  private readonly ctx: DecodeContext = { input: 'journal', reference: 0, bootTime: 0, fallbackTime: 0, arrival: null };

  constructor(options: JournalInputOptions) {
    this.decoder = new LineDecoder(options.formats, options.watch);
    this.reader = new JournalReader({
      cursorFile: options.cursorDir === null ? null : join(options.cursorDir, 'journal.json'),
      fromEnd: options.fromEnd,
      onEntry: (entry) => this.entry(entry),
      onWarning: options.onWarning,
      ...(options.journalctlArgs === undefined ? {} : { journalctlArgs: options.journalctlArgs }),
    });
  }

  /**
   * The message is framed as the kernel line rsyslog would have written (stamp from the journal, tag
   * `kernel:`), so the same log formats serve kern.log and the journal; the reader only passes entries
   * the kernel logged, so the tag is true.
   */
  private entry(entry: KernelJournalEntry): void {
    this.ctx.reference = this.ctx.fallbackTime = entry.time;
    const decoded = this.decoder.decode(`${new Date(entry.time).toISOString()} journal kernel: ${entry.message}`, this.ctx);
    if (decoded.outcome === Outcome.Matched && decoded.hit !== null) this.sink?.(decoded.hit);
  }

  async start(sink: HitSink): Promise<void> {
    this.sink = sink;
    await this.reader.start();
  }

  async stop(): Promise<void> {
    await this.reader.stop();
    this.sink = null;
  }

  persist(): void {
    this.reader.persistCursor();
  }

  updateWatch(watch: Watch): void {
    this.decoder.setWatch(watch);
  }

  lost(): Loss[] {
    const { missed } = this.reader.status();
    if (missed === 0) return [];
    return [{ count: missed, unit: 'kernel messages', cause: 'journald reports it missed them: the kernel ring buffer overwrote them before journald read them', remedy: RING_REMEDY }];
  }

  status(): InputStatus {
    return { id: this.id, kind: 'journal', ...this.reader.status(), decoder: { ...this.decoder.counters }, lost: this.lost() };
  }
}
