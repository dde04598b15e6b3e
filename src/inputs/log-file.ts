/**
 * File mode's input: follows a firewall log (LogFollower: rotation-proof, resumable) and turns its lines into
 * KnockHits through the configured log formats.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { type CompiledFormat, type DecodeContext, Outcome } from '../formats/logformat.js';
import { type DecoderCounters, LineDecoder } from '../formats/registry.js';
import type { KnockHit } from '../hit.js';
import type { PortWatch, Watch } from '../watch.js';
import { type FollowerStatus, LogFollower } from './follower.js';
import type { HitSink, Input, InputStatus } from './input.js';

export interface LogFileInputOptions {
  path: string;
  formats: readonly CompiledFormat[];
  /** The ports that matter: lines for other ports are counted, not parsed (null: every line is parsed). */
  watch: PortWatch | null;
  /** Directory for the cursor file (StateDir/cursors), or null not to persist it. */
  cursorDir: string | null;
  fromEnd: boolean;
  /** Without a saved position, read from the start (a file found while running) instead of the end. */
  fromStartWithoutCursor?: boolean;
  /** The firewall whose log this is (a collector's per-firewall file), canonical: KnockHit.firewall. */
  firewall?: string;
  maxLineLength: number;
  /** When the machine booted (ms), for uptime-stamped formats. */
  bootTime: number;
  onWarning: (message: string) => void;
}

export interface LogFileStatus extends InputStatus, FollowerStatus {
  decoder: DecoderCounters;
}

/** Cursor file name for a log path: stable, and safe whatever characters the path has. */
export function cursorFileName(path: string): string {
  return `${createHash('sha256').update(path).digest('hex').slice(0, 16)}.json`;
}

export class LogFileInput implements Input {
  readonly id: string;
  private readonly follower: LogFollower;
  private readonly decoder: LineDecoder;
  private sink: HitSink | null = null;
  private readonly ctx: DecodeContext;
  /** While a hit is handed on: the offset just past its line (persist() saves that position, not the block's end). */
  private handing: number | undefined;

  constructor(options: LogFileInputOptions) {
    this.id = options.path;
    this.decoder = new LineDecoder(options.formats, options.watch);
    this.ctx = { input: options.path, reference: 0, bootTime: options.bootTime, fallbackTime: 0, arrival: 0 };
    if (options.firewall !== undefined) this.ctx.firewall = options.firewall;
    this.follower = new LogFollower({
      path: options.path,
      maxLineLength: options.maxLineLength,
      cursorFile: options.cursorDir === null ? null : join(options.cursorDir, cursorFileName(options.path)),
      fromEnd: options.fromEnd,
      fromStartWithoutCursor: options.fromStartWithoutCursor ?? false,
      lines: {
        block: (text, base) => {
          this.arrive();
          this.decoder.decodeLines(text, this.ctx, (hit, lineEnd) => this.hand(hit, base + lineEnd + 1));
        },
        line: (text, end) => {
          this.arrive();
          const decoded = this.decoder.decode(text, this.ctx);
          if (decoded.outcome === Outcome.Matched && decoded.hit !== null) this.hand(decoded.hit, end);
        },
        longLine: () => this.decoder.countLongLine(),
      },
      onWarning: (message) => options.onWarning(message),
    });
  }

  /** Lines just read: now is their arrival time, the reference of year-less stamps and the time of stamp-less formats. */
  private arrive(): void {
    const now = Date.now();
    this.ctx.reference = now;
    this.ctx.fallbackTime = now;
    this.ctx.arrival = now;
  }

  private hand(hit: KnockHit, lineEnd: number): void {
    this.handing = lineEnd;
    try {
      this.sink?.(hit);
    } finally {
      this.handing = undefined;
    }
  }

  async start(sink: HitSink): Promise<void> {
    this.sink = sink;
    await this.follower.start();
  }

  async stop(): Promise<void> {
    await this.follower.stop();
    this.sink = null;
  }

  /** Persists the follower's position now: past the line of the hit being handed on, if any (the engine calls it before an open's commands run). */
  persist(): void {
    this.follower.persistCursor(this.handing);
  }

  updateWatch(watch: Watch): void {
    this.decoder.setWatch(watch);
  }

  caughtUp(): boolean {
    return this.follower.status().lagBytes === 0;
  }

  status(): LogFileStatus {
    return { id: this.id, kind: 'file', ...this.follower.status(), decoder: { ...this.decoder.counters } };
  }
}
