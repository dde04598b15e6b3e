/**
 * What happens when a door opens: pick the command for the knocker's address family (knockd's *_6
 * fallback rules), record the pending stop BEFORE the start command runs, run the start command, then
 * run the stop command Cmd_Timeout seconds after the start command finished (knockd's timing).
 * A repeat success while the stop is pending extends it instead of stacking a second rule (knockd
 * issues #14, #70), unless the door says `On_Reopen = rerun`.
 */
import { randomUUID } from 'node:crypto';
import type { DoorConfig, OpenRequest } from '../config/types.js';
import type { ActionEvent } from './events.js';
import type { Clock, Timer } from './clock.js';
import { CommandTemplate, commandEnvironment } from './command.js';
import type { CommandResult, CommandRunner } from './runner.js';
import type { PendingStop, StopStore } from './stop-store.js';

interface DoorCommands {
  /** null: nothing runs for this family, and no stop either (knockd: no start command, no stop). */
  start: { v4: CommandTemplate | null; v6: CommandTemplate | null };
  /** null: no stop; a template of '' still schedules (and logs) an empty stop, as knockd does. */
  stop: { v4: CommandTemplate | null; v6: CommandTemplate | null };
}

function doorCommands(door: DoorConfig): DoorCommands {
  const withRequest = door.encrypted !== null;
  const template = (text: string | null): CommandTemplate | null => (text === null ? null : new CommandTemplate(text, withRequest));
  const start4 = door.startCommand ? template(door.startCommand) : null;
  const stop4 = template(door.stopCommand);
  return {
    start: { v4: start4, v6: door.startCommand6 === null ? start4 : door.startCommand6 ? template(door.startCommand6) : null },
    stop: { v4: stop4, v6: door.stopCommand6 === null ? stop4 : template(door.stopCommand6) },
  };
}

export interface DoorActionsOptions {
  clock: Clock;
  runner: CommandRunner;
  store: StopStore;
  emit: (event: ActionEvent) => void;
  /** Global CommandLimit in seconds (0 = none); a door's Command_Limit overrides it. */
  commandLimit: number;
}

/** A start or stop command that is running now (for status, and for what shutdown leaves behind). */
export interface RunningCommand {
  door: string;
  ip: string;
  action: 'start' | 'stop';
  command: string;
  /** When it was started (ms since the epoch). */
  since: number;
}

interface Armed {
  stop: PendingStop;
  /** null while the start command runs (the stop's time is not known yet). */
  timer: Timer | null;
  /** Latest time an extension asked for (0 = none). */
  extendedUntil: number;
  /** closeAll() came while the start command ran: the stop runs as soon as the start has finished. */
  closeWhenStarted: boolean;
}

export class DoorActions {
  private commands = new Map<DoorConfig, DoorCommands>();
  private readonly armed = new Map<string, Armed>();
  /** knockerKey(door, section, ip) → ids of its pending stops. */
  private readonly byKnocker = new Map<string, Set<string>>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly runningCommands = new Set<RunningCommand>();
  private commandLimit: number;

  constructor(
    doors: readonly DoorConfig[],
    private readonly options: DoorActionsOptions,
  ) {
    this.commandLimit = options.commandLimit;
    this.setDoors(doors, options.commandLimit);
  }

  /** Replaces the doors and the global CommandLimit (reload); pending stops keep the commands they were recorded with. */
  setDoors(doors: readonly DoorConfig[], commandLimit: number): void {
    this.commands = new Map(doors.map((door) => [door, doorCommands(door)]));
    this.commandLimit = commandLimit;
  }

  /**
   * The matcher reported an open: run the door's commands for `ip`. An encrypted message's `request`
   * fills %PORT%, %DURATION% and %KNOCK_IP%, and its duration replaces Cmd_Timeout; opens of one
   * address for different ports have stops of their own. `firewall`: the firewall that saw the knock, when the
   * hits name one (%FIREWALL%); opens on different firewalls have stops of their own too.
   */
  open(door: DoorConfig, ip: string, request: OpenRequest | null = null, firewall?: string): void {
    const commands = this.commands.get(door) ?? doorCommands(door);
    const v6 = ip.includes(':');
    const start = v6 ? commands.start.v6 : commands.start.v4;
    if (start === null) return;
    const stop = v6 ? commands.stop.v6 : commands.stop.v4;
    const now = this.options.clock.now();
    const timeout = request?.duration ?? door.cmdTimeout;
    if (stop !== null && door.onReopen === 'extend') {
      const pendingId = this.byKnocker.get(knockerKey(door.name, door.at.line, ip, request?.port, firewall))?.values().next().value;
      if (pendingId !== undefined) {
        this.extend(this.armed.get(pendingId)!, now + timeout * 1000);
        return;
      }
    }

    const limitMs = (door.commandLimit ?? this.commandLimit) * 1000;
    let startText: string;
    let pending: PendingStop | null = null;
    try {
      const values = { ip, door: door.name, timeout, action: 'start' as const, request, ...(firewall === undefined ? {} : { firewall }) };
      startText = start.expand(values);
      if (stop !== null) {
        const stopValues = { ...values, action: 'stop' as const };
        pending = {
          id: randomUUID(),
          door: door.name,
          section: door.at.line,
          ip,
          ...(firewall === undefined ? {} : { firewall }),
          command: stop.expand(stopValues),
          env: commandEnvironment(stopValues),
          // Provisional: if we die while the start command runs, the stop still comes.
          due: now + limitMs + timeout * 1000,
          openedAt: now,
          limitMs,
          ...(request === null ? {} : { port: request.port }),
        };
        try {
          this.options.store.save(pending);
        } catch (error) {
          throw new Error(`not opened for ${ip}: its stop command could not be recorded (${(error as Error).message})`);
        }
        this.index(pending);
      }
      this.track(this.runStart(door, ip, timeout, startText, commandEnvironment(values), limitMs, pending));
    } catch (error) {
      this.options.emit({ type: 'error', time: now, message: `${door.name}: ${(error as Error).message}` });
    }
  }

  private async runStart(door: DoorConfig, ip: string, timeout: number, command: string, env: Record<string, string>, limitMs: number, pending: PendingStop | null): Promise<void> {
    const { clock, emit } = this.options;
    emit({ type: 'start', time: clock.now(), door: door.name, ip, command });
    const result = await this.run({ door: door.name, ip, action: 'start', command, since: clock.now() }, env, limitMs);
    emit({ type: 'exit', time: clock.now(), door: door.name, ip, action: 'start', command, result });
    if (pending === null) return;
    const entry = this.armed.get(pending.id);
    if (entry === undefined) return;
    // Never before the start has finished: a stop racing its start would leave the rule in place.
    if (entry.closeWhenStarted) {
      this.fire(pending.id);
      return;
    }
    // knockd: the stop runs Cmd_Timeout (or the requested duration) after the start command *finished*; an extension may ask for later.
    this.reschedule(entry, Math.max(clock.now() + timeout * 1000, entry.extendedUntil));
  }

  /** Remembers a pending stop (not yet armed) under its door and knocker. */
  private index(stop: PendingStop): Armed {
    const entry: Armed = { stop, timer: null, extendedUntil: 0, closeWhenStarted: false };
    this.armed.set(stop.id, entry);
    const key = knockerKey(stop.door, stop.section, stop.ip, stop.port, stop.firewall);
    let ids = this.byKnocker.get(key);
    if (ids === undefined) this.byKnocker.set(key, (ids = new Set()));
    ids.add(stop.id);
    return entry;
  }

  private extend(entry: Armed, until: number): void {
    entry.extendedUntil = Math.max(entry.extendedUntil, until);
    if (entry.timer !== null && until > entry.stop.due) this.reschedule(entry, until);
    const effective = entry.timer === null ? entry.extendedUntil : entry.stop.due;
    this.options.emit({ type: 'extend', time: this.options.clock.now(), door: entry.stop.door, ip: entry.stop.ip, until: effective });
  }

  /** Arms the stop's timer for `due` and records a changed due time. */
  private reschedule(entry: Armed, due: number): void {
    const { clock, store } = this.options;
    if (entry.timer !== null) clock.cancel(entry.timer);
    // Armed first: a store that cannot write must not keep the stop from running in this process.
    entry.timer = clock.at(due, () => this.fire(entry.stop.id));
    if (due === entry.stop.due) return;
    const recorded = entry.stop;
    entry.stop = { ...recorded, due };
    try {
      store.save(entry.stop);
    } catch (error) {
      this.options.emit({
        type: 'error',
        time: clock.now(),
        message: `${recorded.door}: cannot record the new stop time for ${recorded.ip} (${(error as Error).message}); after a restart the stop runs at its earlier recorded time`,
      });
    }
  }

  private fire(id: string): void {
    const entry = this.armed.get(id);
    if (entry === undefined) return;
    this.track(this.runStop(entry));
  }

  private async runStop(entry: Armed): Promise<void> {
    const { clock, emit, store } = this.options;
    const { stop } = entry;
    if (entry.timer !== null) clock.cancel(entry.timer);
    entry.timer = null;
    // Forgotten at once: a knock while the stop command runs opens the door afresh.
    this.forget(stop);
    const now = clock.now();
    emit({ type: 'stop', time: now, door: stop.door, ip: stop.ip, command: stop.command, lateMs: Math.max(0, now - stop.due) });
    if (stop.command !== '') {
      const result = await this.run({ door: stop.door, ip: stop.ip, action: 'stop', command: stop.command, since: now }, stop.env, stop.limitMs);
      emit({ type: 'exit', time: clock.now(), door: stop.door, ip: stop.ip, action: 'stop', command: stop.command, result });
    }
    // Deleted only after it ran: a crash in between runs it again at the next start (at least once).
    store.delete(stop.id);
  }

  private forget(stop: PendingStop): void {
    this.armed.delete(stop.id);
    const key = knockerKey(stop.door, stop.section, stop.ip, stop.port, stop.firewall);
    const ids = this.byKnocker.get(key);
    ids?.delete(stop.id);
    if (ids?.size === 0) this.byKnocker.delete(key);
  }

  /** Runs a command, listed in running() meanwhile. */
  private run(command: RunningCommand, env: Record<string, string>, limitMs: number): Promise<CommandResult> {
    this.runningCommands.add(command);
    const result = this.options.runner.run(command.command, env, limitMs);
    const done = (): void => void this.runningCommands.delete(command);
    result.then(done, done);
    return result;
  }

  /** Re-arms the stops a store kept (daemon start): overdue ones run at once, later ones at their time. */
  restore(): PendingStop[] {
    const stops = this.options.store.load().sort((a, b) => a.due - b.due);
    for (const stop of stops) this.reschedule(this.index(stop), stop.due);
    return stops;
  }

  /**
   * Runs the stops whose time has come by the clock while their timers still wait. Timers count
   * monotonic time, which stands still during a suspend and ignores a forward clock step, so without
   * this a stop could run long after its time (the daemon calls it periodically). Returns how many ran.
   */
  reconcile(): number {
    const now = this.options.clock.now();
    let overdue = 0;
    for (const [id, entry] of this.armed) {
      if (entry.timer === null || entry.stop.due > now) continue;
      this.fire(id);
      overdue++;
    }
    return overdue;
  }

  /** Pending stops, soonest first (for status). */
  pending(): PendingStop[] {
    return [...this.armed.values()].map((entry) => entry.stop).sort((a, b) => a.due - b.due);
  }

  /** Commands running now, oldest first. */
  running(): RunningCommand[] {
    return [...this.runningCommands].map((command) => ({ ...command }));
  }

  /** Runs every pending stop now (CloseOnExit); settled() tells when they are done. */
  closeAll(): void {
    for (const [id, entry] of [...this.armed]) {
      if (entry.timer === null) entry.closeWhenStarted = true; // its start command is still running
      else this.fire(id);
    }
  }

  /** Disarms every timer without running anything (daemon exit: the store keeps the stops for the next start). */
  disarm(): void {
    for (const entry of this.armed.values()) {
      if (entry.timer !== null) this.options.clock.cancel(entry.timer);
      entry.timer = null;
    }
  }

  /** Whether some command is still running (or about to). */
  get busy(): boolean {
    return this.inFlight.size > 0;
  }

  /** Resolves when every command started so far has finished. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private track(work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => {
      this.options.emit({ type: 'error', time: this.options.clock.now(), message: `command handling failed: ${(error as Error).message}` });
    });
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }
}

/** A door's stops for one knocker: per requested port, and per firewall (the same address opening it on another firewall is another open). */
function knockerKey(door: string, section: number, ip: string, port: number | undefined, firewall: string | undefined): string {
  return `${door}\0${section}\0${ip}\0${port ?? ''}\0${firewall ?? ''}`;
}
