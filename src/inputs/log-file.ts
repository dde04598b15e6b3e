/**
 * File mode's input: follows a firewall log (LogFollower: rotation-proof, resumable) and turns each
 * line into a KnockHit through the configured log formats.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { LineDecoder } from '../formats/registry.js';
import { LogFollower } from './follower.js';
import type { HitSink, Input, InputStatus } from './input.js';

export interface LogFileInputOptions {
  path: string;
  decoder: LineDecoder;
  /** Directory for the cursor file (StateDir/cursors), or null not to persist it. */
  cursorDir: string | null;
  fromEnd: boolean;
  maxLineLength: number;
  /** When the machine booted (ms), for uptime-stamped formats. */
  bootTime: number;
  onWarning: (message: string) => void;
}

/** Cursor file name for a log path: stable, and safe whatever characters the path has. */
export function cursorFileName(path: string): string {
  return `${createHash('sha256').update(path).digest('hex').slice(0, 16)}.json`;
}

export class LogFileInput implements Input {
  readonly id: string;
  private readonly follower: LogFollower;
  private sink: HitSink | null = null;
  private readonly ctx;

  constructor(private readonly options: LogFileInputOptions) {
    this.id = options.path;
    this.ctx = { input: options.path, reference: 0, bootTime: options.bootTime, fallbackTime: 0 };
    this.follower = new LogFollower({
      path: options.path,
      maxLineLength: options.maxLineLength,
      cursorFile: options.cursorDir === null ? null : join(options.cursorDir, cursorFileName(options.path)),
      fromEnd: options.fromEnd,
      onLine: (line) => this.line(line),
      onWarning: (message) => options.onWarning(message),
    });
  }

  private line(line: string): void {
    const now = Date.now();
    this.ctx.reference = now;
    this.ctx.fallbackTime = now;
    const { decoder } = this.options;
    const hit = decoder.decode(line, this.ctx);
    if (hit === null) return;
    // A whole-second stamp on a line that arrives within that second: arrival time is the better
    // estimate (exact timeouts need sub-second times). Lines read late (backlog after a restart) keep
    // their logged time, so knocks spread over a downtime are never squeezed together.
    const precision = decoder.timestamps.lastPrecision;
    if (precision >= 1000 && now >= hit.time && now < hit.time + precision) hit.time = now;
    this.sink?.(hit);
  }

  async start(sink: HitSink): Promise<void> {
    this.sink = sink;
    await this.follower.start();
  }

  async stop(): Promise<void> {
    await this.follower.stop();
    this.sink = null;
  }

  /** Persists the follower's position now (the daemon calls it periodically and before commands run). */
  persist(): void {
    this.follower.persistCursor();
  }

  caughtUp(): boolean {
    return this.follower.status().lagBytes === 0;
  }

  status(): InputStatus {
    return { id: this.id, kind: 'file', ...this.follower.status(), decoder: { ...this.options.decoder.counters } };
  }
}
