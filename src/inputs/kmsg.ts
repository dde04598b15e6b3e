/**
 * `FirewallLog = kmsg`: the kernel log read straight from /dev/kmsg, with no syslog daemon in between.
 *
 * Each read of /dev/kmsg returns one record, `PRI,SEQ,MICROSECONDS,FLAGS;MESSAGE` plus continuation lines, and
 * every reader has its own position, so knocktail takes nothing from rsyslog or journald. The records are
 * numbered: a gap in the numbers is records the kernel's ring buffer overwrote before knocktail read them, and
 * a read that fails with EPIPE says the same; both are counted (the input's `lost`), never skipped silently.
 * Records from user space (written to /dev/kmsg) carry a non-kernel facility and are refused, as the journal
 * input does (fixtures/real/forged/README.md, G08).
 *
 * The position (boot id and last sequence number) is persisted; a restart within the same boot resumes after
 * it and counts what the ring lost meanwhile. The first start, or the first after a reboot when no position
 * of that boot exists, reads only new records.
 */
import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { JsonStateFile } from '../durable.js';
import { type CompiledFormat, type DecodeContext, Outcome } from '../formats/logformat.js';
import { LineDecoder } from '../formats/registry.js';
import type { PortWatch, Watch } from '../watch.js';
import type { HitSink, Input, InputStatus, Loss } from './input.js';
import { thisMachineBootTime } from '../formats/timestamp.js';

export interface KmsgRecord {
  /** Syslog facility (0 = kernel) and level. */
  facility: number;
  level: number;
  seq: number;
  /** Microseconds since boot (the kernel's clock, which stops during suspend). */
  micros: number;
  /** The message, without continuation lines. */
  message: string;
}

/** One record as read from /dev/kmsg (`4,347,446351538,-;KNOCK IN=…\n SUBSYSTEM=…\n`), or null when malformed. */
export function parseKmsgRecord(text: string): KmsgRecord | null {
  const semicolon = text.indexOf(';');
  if (semicolon < 0) return null;
  const fields = text.slice(0, semicolon).split(',');
  if (fields.length < 4 || !fields.slice(0, 3).every((field) => /^\d{1,20}$/.test(field))) return null;
  const priority = Number(fields[0]);
  const newline = text.indexOf('\n', semicolon);
  return {
    facility: priority >> 3,
    level: priority & 7,
    seq: Number(fields[1]),
    micros: Number(fields[2]),
    message: text.slice(semicolon + 1, newline < 0 ? text.length : newline),
  };
}

export interface KmsgReaderOptions {
  /** Default /dev/kmsg (tests use a FIFO that plays the kernel). */
  device?: string;
  /** Where the position is persisted; null = nowhere. */
  cursorFile: string | null;
  /** Ignore a saved position and read only new records. */
  fromEnd: boolean;
  onRecord: (record: KmsgRecord) => void;
  onWarning: (message: string) => void;
  /** How long to wait before reading again once nothing is there (default 10 ms). */
  idleMs?: number;
  /** The boot a saved position belongs to (default: /proc/sys/kernel/random/boot_id). */
  bootId?: string;
}

export interface KmsgStatus {
  device: string;
  seq: number | null;
  records: number;
  /** Records not passed on: not the kernel's facility, malformed. */
  rejected: number;
  /** Records the ring overwrote before they were read (gaps in the sequence numbers). */
  lost: number;
  /** Reads that failed with EPIPE (the ring overwrote the record due next). */
  overruns: number;
}

/** Records drained in one go before the event loop gets a turn. */
const BURST = 2000;
/** A record is at most 1 KiB of text plus its dictionary; the kernel refuses a read into a smaller buffer. */
const RECORD_BUFFER = 16 * 1024;

export class KmsgReader {
  private readonly device: string;
  private readonly cursorStore: JsonStateFile | null;
  private readonly bootId: string;
  private readonly buffer = Buffer.alloc(RECORD_BUFFER);
  private fd: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  /** The last sequence number read (or skipped as old). */
  private seq: number | null = null;
  /** Records up to this sequence number were delivered before (a resumed position). */
  private skipThrough = -1;
  private records = 0;
  private rejected = 0;
  private lostRecords = 0;
  private overruns = 0;
  private lastError: string | null = null;

  constructor(private readonly options: KmsgReaderOptions) {
    this.device = options.device ?? '/dev/kmsg';
    this.cursorStore = options.cursorFile === null ? null : new JsonStateFile(resolve(options.cursorFile), 'kmsg position file');
    this.bootId = options.bootId ?? readBootId();
  }

  /** Opens the device; rejects when it cannot (permission, no such device). */
  start(): void {
    try {
      this.fd = openSync(this.device, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (error) {
      const fix = /EACCES|EPERM/.test((error as Error).message) ? 'run as root (or with CAP_SYSLOG), or follow kern.log / the journal instead' : 'follow kern.log or the journal instead';
      throw new Error(`cannot open ${this.device}: ${(error as Error).message}\n  fix: ${fix}`);
    }
    const saved = this.options.fromEnd ? null : this.loadPosition();
    if (saved === null) {
      // Only new records: everything the ring holds now is older than this start.
      this.drain(false);
    } else {
      this.skipThrough = saved;
      this.seq = saved;
    }
    this.schedule(0);
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    if (this.fd !== null) {
      // Whatever the ring holds now is delivered before stopping.
      this.drain(true);
      closeSync(this.fd);
    }
    this.fd = null;
    this.persistPosition();
  }

  status(): KmsgStatus {
    return { device: this.device, seq: this.seq, records: this.records, rejected: this.rejected, lost: this.lostRecords, overruns: this.overruns };
  }

  /** Saves the position (synchronous, atomic). Failures are reported through onWarning. */
  persistPosition(): void {
    if (this.cursorStore === null || this.seq === null) return;
    try {
      this.cursorStore.save({ version: 1, bootId: this.bootId, seq: this.seq });
    } catch (error) {
      this.options.onWarning((error as Error).message);
    }
  }

  private loadPosition(): number | null {
    if (this.cursorStore === null) return null;
    try {
      const saved = this.cursorStore.load() as { version?: unknown; bootId?: unknown; seq?: unknown } | null;
      if (saved === null) return null;
      if (saved.version === 1 && typeof saved.bootId === 'string' && Number.isSafeInteger(saved.seq) && (saved.seq as number) >= 0) {
        // A position of an earlier boot says nothing about this one's numbers.
        return saved.bootId === this.bootId ? (saved.seq as number) : null;
      }
      this.options.onWarning(`the position file ${this.cursorStore.file} is not a knocktail kmsg position (damaged?); reading new kernel records only`);
    } catch (error) {
      this.options.onWarning(`${(error as Error).message}; reading new kernel records only`);
    }
    return null;
  }

  private schedule(delayMs: number): void {
    if (this.fd === null) return;
    const run = (): void => {
      this.timer = null;
      this.immediate = null;
      const more = this.drain(true, BURST);
      this.schedule(more ? 0 : (this.options.idleMs ?? 10));
    };
    if (delayMs === 0) this.immediate = setImmediate(run);
    else this.timer = setTimeout(run, delayMs);
  }

  /**
   * Reads records until none is left (or `limit` were read): delivered, or only numbered when `deliver` is
   * false. Returns true when it stopped at the limit.
   */
  private drain(deliver: boolean, limit = Infinity): boolean {
    for (let count = 0; count < limit; count++) {
      let length: number;
      try {
        length = readSync(this.fd!, this.buffer, 0, this.buffer.length, null);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return false;
        if (code === 'EPIPE') {
          // The record due next was overwritten; the next read starts at the oldest one kept, and the gap in
          // the sequence numbers tells how many were lost.
          this.overruns++;
          continue;
        }
        this.warnOnce(`reading ${this.device} failed: ${(error as Error).message}; trying again`);
        return false;
      }
      if (length === 0) return false;
      this.lastError = null;
      this.take(this.buffer.toString('latin1', 0, length), deliver);
    }
    return true;
  }

  private take(text: string, deliver: boolean): void {
    const record = parseKmsgRecord(text);
    if (record === null) {
      this.rejected++;
      return;
    }
    if (record.seq <= this.skipThrough) return;
    if (this.seq !== null && record.seq > this.seq + 1) this.lostRecords += record.seq - this.seq - 1;
    this.seq = record.seq;
    if (!deliver) return;
    if (record.facility !== 0) {
      this.rejected++;
      return;
    }
    this.records++;
    this.options.onRecord(record);
  }

  private warnOnce(message: string): void {
    if (message === this.lastError) return;
    this.lastError = message;
    this.options.onWarning(message);
  }
}

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
  } catch {
    return 'unknown';
  }
}

export interface KmsgInputOptions {
  formats: readonly CompiledFormat[];
  /** The ports that matter: records for other ports are counted, not parsed (null: every record is parsed). */
  watch: PortWatch | null;
  /** Directory for the position file (StateDir/cursors), or null not to persist it. */
  cursorDir: string | null;
  fromEnd: boolean;
  onWarning: (message: string) => void;
  /** Tests: the device and boot id to use instead of /dev/kmsg and this boot's. */
  device?: string;
  bootId?: string;
}

/** What to do when the kernel's ring buffer overwrote records before they were read (kmsg, journal). */
export const RING_REMEDY =
  'enlarge the kernel ring buffer (boot parameter log_buf_len=16M) and keep the CPU free for knocktail; ' +
  'where floods are a risk, log the knocks with NFLOG instead (FirewallLog = nflog:GROUP), which has no ring';

/** `FirewallLog = kmsg`: kernel records as KnockHits, through the configured log formats. */
export class KmsgInput implements Input {
  readonly id = 'kmsg';
  private readonly reader: KmsgReader;
  private sink: HitSink | null = null;
  private readonly decoder: LineDecoder;
  private readonly ctx: DecodeContext = { input: 'kmsg', reference: 0, bootTime: 0, fallbackTime: 0, arrival: null };
  /** Wall-clock time of the kernel's zero (the boot), for the records' microsecond stamps. */
  private readonly bootTime = thisMachineBootTime();

  constructor(options: KmsgInputOptions) {
    this.decoder = new LineDecoder(options.formats, options.watch);
    this.reader = new KmsgReader({
      cursorFile: options.cursorDir === null ? null : join(options.cursorDir, 'kmsg.json'),
      fromEnd: options.fromEnd,
      onRecord: (record) => this.record(record),
      onWarning: options.onWarning,
      ...(options.device === undefined ? {} : { device: options.device }),
      ...(options.bootId === undefined ? {} : { bootId: options.bootId }),
    });
  }

  /** Framed as the kernel line rsyslog would have written (as the journal input does), so the same formats serve. */
  private record(record: KmsgRecord): void {
    const time = Math.min(this.bootTime + record.micros / 1000, Date.now());
    this.ctx.reference = this.ctx.fallbackTime = time;
    const decoded = this.decoder.decode(`${new Date(time).toISOString()} kmsg kernel: ${record.message}`, this.ctx);
    if (decoded.outcome === Outcome.Matched && decoded.hit !== null) this.sink?.(decoded.hit);
  }

  async start(sink: HitSink): Promise<void> {
    this.sink = sink;
    this.reader.start();
  }

  async stop(): Promise<void> {
    this.reader.stop();
    this.sink = null;
  }

  persist(): void {
    this.reader.persistPosition();
  }

  updateWatch(watch: Watch): void {
    this.decoder.setWatch(watch);
  }

  lost(): Loss[] {
    const { lost, overruns } = this.reader.status();
    if (lost === 0 && overruns === 0) return [];
    return [{ count: lost, unit: `kernel log records (${overruns} overruns)`, cause: 'the kernel ring buffer overwrote them before knocktail read them', remedy: RING_REMEDY }];
  }

  status(): InputStatus {
    return { id: this.id, kind: 'kmsg', ...this.reader.status(), decoder: { ...this.decoder.counters }, lost: this.lost() };
  }
}
