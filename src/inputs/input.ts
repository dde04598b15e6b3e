/**
 * The contract every input adapter fulfils: it is started with a sink, emits KnockHits into it
 * until stopped, and can say where it is. Adding a log source or capture type = one new file here.
 */
import type { Options } from '../config/types.js';
import type { KnockHit } from '../hit.js';
import type { Watch } from '../watch.js';

export type HitSink = (hit: KnockHit) => void;

/** What an input reports for `knocktail status`: free-form fields beside its id and kind. */
export interface InputStatus {
  id: string;
  kind: string;
  [field: string]: unknown;
}

/**
 * Knocks an input could not see, where the kernel or the log's writer tells: each cause counted apart, shown
 * by `status` (the input's `lost`) and warned about by the daemon with the remedy. Never silent.
 */
export interface Loss {
  /** How many, in `unit`s (the kernel counts some losses in messages that each held one or more packets). */
  count: number;
  unit: string;
  /** Why, in a few words. */
  cause: string;
  /** What the operator can do about it. */
  remedy: string;
}

export interface Input {
  /** Stable id (a path, `journal`, `pcap:eth0`), also used as KnockHit.input. */
  readonly id: string;
  /** Begins delivering hits; resolves once the input is ready (file opened, capture running). */
  start(sink: HitSink): Promise<void>;
  /** Stops delivering hits and releases everything; persists its position where it has one. */
  stop(): Promise<void>;
  status(): InputStatus;
  /**
   * Saves its position now, where it has one (the daemon calls it periodically). With `hitInput`, the id of a
   * hit's input that this input `covers`: only the position of that part (before an open's commands run).
   */
  persist?(hitInput?: string): void;
  /** Whether it delivers hits under another input id too (a pattern: each file it follows is an input of its own). */
  covers?(hitInput: string): boolean;
  /** False while it still has a backlog to read (then the clock must not expire knocks its backlog may finish). */
  caughtUp?(): boolean;
  /** The doors changed (reload, a one-time file with new ports): what to let through from now on. */
  updateWatch?(watch: Watch): void;
  /** What it lost so far, by cause (only causes that happened); inputs that cannot lose anything have none. */
  lost?(): Loss[];
  /** A reload kept this input: the new [options] (the limits it may change while running). */
  updateOptions?(options: Options): void;
}
