/** What the action layer reports: commands about to run, their outcomes, postponed stops and its own errors. */
import type { CommandResult } from './runner.js';

export type ActionEvent =
  /** A start command is about to run (`command` is the expanded text). */
  | { type: 'start'; time: number; door: string; ip: string; command: string }
  /** Cmd_Timeout passed: the stop command is about to run; `lateMs` > 0 when it was due earlier (daemon was down, clock jumped). */
  | { type: 'stop'; time: number; door: string; ip: string; command: string; lateMs: number }
  /** A start or stop command finished (or could not start, or was killed at its limit). */
  | { type: 'exit'; time: number; door: string; ip: string; action: 'start' | 'stop'; command: string; result: CommandResult }
  /** A repeat success while the door's stop was pending: the stop moved to `until` instead of re-running the start. */
  | { type: 'extend'; time: number; door: string; ip: string; until: number }
  /** Something went wrong in the action layer; the daemon carries on. */
  | { type: 'error'; time: number; message: string };
