/**
 * Where pending stop commands are kept. The action layer records a stop here before the start command
 * runs and deletes it after the stop command ran, so whatever holds this table decides what survives
 * a crash.
 */

export interface PendingStop {
  /** Unique id. */
  id: string;
  /** Door name (the door may be gone from the config by the time the stop runs). */
  door: string;
  /** Line of the door's section header: tells apart doors that share a name (knockd allows that). */
  section: number;
  ip: string;
  /** The firewall that saw the knock, when the hits name one (a collector): its commands act there. */
  firewall?: string;
  /** Expanded stop command; '' runs nothing (knockd logs it anyway). */
  command: string;
  /** Environment given to the command. */
  env: Record<string, string>;
  /** When the stop is due, ms since the epoch (provisional while the start command still runs). */
  due: number;
  /** When the door opened. */
  openedAt: number;
  /** How long the stop command may run, ms (the door's Command_Limit, else CommandLimit; 0 = no limit). */
  limitMs: number;
  /** The port an encrypted message opened (each port of an address has its own stop); absent for other doors. */
  port?: number;
}

export interface StopStore {
  /** Every pending stop, for start-up reconciliation. */
  load(): PendingStop[];
  /** Records or replaces a stop; for a durable store, it is on disk when this returns. */
  save(stop: PendingStop): void;
  delete(id: string): void;
}

/** For replay and tests: nothing survives the process. */
export class MemoryStopStore implements StopStore {
  private readonly stops = new Map<string, PendingStop>();

  load(): PendingStop[] {
    return [...this.stops.values()];
  }

  save(stop: PendingStop): void {
    this.stops.set(stop.id, { ...stop });
  }

  delete(id: string): void {
    this.stops.delete(id);
  }
}
