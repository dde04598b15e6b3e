/**
 * The matcher's range doors (see range-door.ts): which kind of door a config makes, one lookup from a hit's
 * (protocol, port) to the range doors that watch it, their earliest deadline, and reload (a door whose
 * doorIdentity is unchanged keeps what it has in progress).
 */
import type { DoorConfig } from '../config/types.js';
import { doorIdentity, stepKey } from './door.js';
import { EncryptedDoor } from './encrypted-door.js';
import type { RangeDoor, RangeDoorContext } from './range-door.js';
import { RollingDoor } from './rolling-door.js';

/** Whether a door watches ranges (rolling or encrypted) instead of following a fixed sequence. */
export function isRangeDoor(config: DoorConfig): boolean {
  return config.rolling !== null || config.encrypted !== null;
}

function createRangeDoor(config: DoorConfig, context: RangeDoorContext): RangeDoor {
  return config.rolling !== null ? new RollingDoor(config, context) : new EncryptedDoor(config, context);
}

/** Every stepKey (TCP and UDP ports). */
const STEP_KEYS = 0x20000;

export class RangeDoors {
  private doors: RangeDoor[] = [];
  /** stepKey → 1 + index into `groups` (0: no range door watches it); null while there is no range door. */
  private index: Uint16Array | null = null;
  /** The distinct sets of doors that watch some port, in config order. */
  private groups: RangeDoor[][] = [];
  /** The door earliestDeadline() found last. */
  private due: RangeDoor | null = null;

  constructor(private readonly context: RangeDoorContext) {}

  /** The range doors among `configs`, in config order; doors with an unchanged identity are kept with their state. */
  reload(configs: readonly DoorConfig[]): void {
    const reusable = new Map<string, RangeDoor[]>();
    for (const door of this.doors) {
      const identity = doorIdentity(door.config, []);
      const list = reusable.get(identity);
      if (list === undefined) reusable.set(identity, [door]);
      else list.push(door);
    }
    this.doors = configs.filter(isRangeDoor).map((config) => {
      const reused = reusable.get(doorIdentity(config, []))?.shift();
      if (reused === undefined) return createRangeDoor(config, this.context);
      reused.config = config;
      return reused;
    });
    this.rebuildIndex();
  }

  get all(): readonly RangeDoor[] {
    return this.doors;
  }

  /** The range doors watching a stepKey, or undefined: one array read when no range door does. */
  at(key: number): readonly RangeDoor[] | undefined {
    const index = this.index;
    if (index === null) return undefined;
    const group = index[key]!;
    return group === 0 ? undefined : this.groups[group - 1];
  }

  /** The earliest deadline of any range door (Infinity: none); expireEarliest() then ends what is due at it. */
  earliestDeadline(): number {
    let deadline = Infinity;
    this.due = null;
    for (const door of this.doors) {
      const next = door.nextDeadline();
      if (next !== null && next < deadline) {
        this.due = door;
        deadline = next;
      }
    }
    return deadline;
  }

  /** Expires, by `deadline`, the door earliestDeadline() found. */
  expireEarliest(deadline: number): void {
    this.due?.expire(deadline);
  }

  private rebuildIndex(): void {
    if (this.doors.length === 0) {
      this.index = null;
      this.groups = [];
      return;
    }
    // Which doors watch each key, as the list of their positions; equal lists share one group.
    const members: Array<number[] | undefined> = new Array<number[] | undefined>(STEP_KEYS);
    this.doors.forEach((door, position) => {
      for (const range of door.ranges) {
        for (let port = range.first; port <= range.last; port++) {
          const key = stepKey(range.proto, port);
          const list = members[key];
          if (list === undefined) members[key] = [position];
          else if (list.at(-1) !== position) list.push(position);
        }
      }
    });
    const index = new Uint16Array(STEP_KEYS);
    const groupOf = new Map<string, number>();
    const groups: RangeDoor[][] = [];
    for (let key = 0; key < STEP_KEYS; key++) {
      const list = members[key];
      if (list === undefined) continue;
      const signature = list.join(' ');
      let group = groupOf.get(signature);
      if (group === undefined) {
        groups.push(list.map((position) => this.doors[position]!));
        group = groups.length;
        // Overlapping ranges of thousands of doors could need more; no real config comes close.
        if (group > 0xffff) throw new Error('the range doors overlap in more than 65535 different ways; give them ranges of their own');
        groupOf.set(signature, group);
      }
      index[key] = group;
    }
    this.index = index;
    this.groups = groups;
  }
}
