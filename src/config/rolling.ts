/**
 * The directives of a rolling door (docs/rolling-sequences.md): `Sequence_Secret`, `Sequence_Ports`,
 * `Sequence_Length`, `Sequence_Period`. parse.ts adds ROLLING_DIRECTIVES to its door table and calls
 * finishRollingDoor() once a door's lines are read; the values wait in a draft until then, because a rolling
 * door needs its secret and its range before it means anything.
 */
import { type DoorDirective, InvalidValue, path, wholeNumber } from './directive.js';
import type { Report } from './reader.js';
import { minimumRangeSize } from '../knocks/rolling.js';
import { type SecretFile, secretFileDirective } from './secret-file.js';
import { MAX_STEPS } from './sequence.js';
import type { DoorConfig, PortRange } from './types.js';

export const DEFAULT_ROLLING_LENGTH = 4;
export const DEFAULT_ROLLING_PERIOD = 30;
/** Shorter periods leave no room for clock skew; longer ones keep a sniffed sequence usable for days. */
export const MIN_ROLLING_PERIOD = 10;
export const MAX_ROLLING_PERIOD = 86_400;
/** Fewer possible sequences than this earn a warning: a guesser could hope to hit one. */
const WEAK_SEQUENCE_BITS = 32;

interface RollingDraft {
  secret?: SecretFile;
  ports?: PortRange;
  length?: number;
  period?: number;
}

const drafts = new WeakMap<DoorConfig, RollingDraft>();

function draftOf(door: DoorConfig): RollingDraft {
  let draft = drafts.get(door);
  if (draft === undefined) drafts.set(door, (draft = {}));
  return draft;
}

const RANGE = /^(\d+)\s*-\s*(\d+)(?:\s*:\s*([A-Za-z]*))?$/;

/** `LOW-HIGH[:tcp|udp]`, 1 <= LOW <= HIGH <= 65535. */
export function parsePortRange(value: string): PortRange {
  const match = RANGE.exec(value);
  const fix = 'write LOW-HIGH, optionally followed by :udp (all knocks UDP) or :tcp (the default), e.g. 40000-40999';
  if (match === null) throw new InvalidValue(`"${value}" is not a port range`, fix);
  const low = Number(match[1]);
  const high = Number(match[2]);
  if (low < 1 || high > 65535) throw new InvalidValue(`ports of "${value}" are outside 1-65535`, fix);
  if (low > high) throw new InvalidValue(`the range "${value}" starts above its end`, `write ${high}-${low}`);
  const proto = (match[3] ?? 'tcp').toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp') throw new InvalidValue(`protocol "${match[3]}" is invalid`, 'use tcp or udp');
  return { first: low, last: high, proto };
}

export const ROLLING_DIRECTIVES: DoorDirective[] = [
  {
    name: 'Sequence_Secret',
    apply: (door, value, context) => {
      draftOf(door).secret = secretFileDirective(path(value, context));
    },
  },
  { name: 'Sequence_Ports', apply: (door, value) => { draftOf(door).ports = parsePortRange(value); } },
  { name: 'Sequence_Length', apply: (door, value) => { draftOf(door).length = wholeNumber(value, 1, MAX_STEPS, 'knocks'); } },
  { name: 'Sequence_Period', apply: (door, value) => { draftOf(door).period = wholeNumber(value, MIN_ROLLING_PERIOD, MAX_ROLLING_PERIOD, 'seconds'); } },
];

const NAMES = ROLLING_DIRECTIVES.map((directive) => directive.name);

/**
 * Whole-door rules, once every line of `door` is read (`lines`: directive name → last line): a rolling door
 * has a secret and a range, a length the range can hold, and no fixed or one-time sequence. Sets door.rolling.
 * Returns whether the door is a rolling one (even a broken one, so it is not also reported as sequence-less).
 */
export function finishRollingDoor(door: DoorConfig, lines: ReadonlyMap<string, number>, report: Report): boolean {
  const written = NAMES.filter((name) => lines.has(name));
  if (written.length === 0) return false;
  const first = Math.min(...written.map((name) => lines.get(name)!));
  for (const fixed of ['Sequence', 'One_Time_Sequences']) {
    const fixedLine = lines.get(fixed);
    if (fixedLine === undefined) continue;
    report.error(
      Math.max(fixedLine, first),
      `door [${door.name}] has both ${fixed} (line ${fixedLine}) and rolling-sequence directives (line ${first})`,
      `keep one: a rolling door derives its sequences from Sequence_Secret, so remove ${fixed}, or remove the Sequence_* lines`,
    );
  }
  for (const required of ['Sequence_Secret', 'Sequence_Ports']) {
    if (!lines.has(required)) {
      report.error(
        first,
        `door [${door.name}] has ${written.join(', ')} but no ${required}`,
        required === 'Sequence_Secret' ? 'add Sequence_Secret = FILE (at least 16 random bytes, readable only by root)' : 'add Sequence_Ports = LOW-HIGH, the range your firewall logs',
      );
    }
  }
  const draft = drafts.get(door) ?? {};
  drafts.delete(door);
  // A secret or range line with a bad value has been reported where it is.
  if (draft.secret === undefined || draft.ports === undefined) return true;
  const length = draft.length ?? DEFAULT_ROLLING_LENGTH;
  const size = draft.ports.last - draft.ports.first + 1;
  if (size < minimumRangeSize(length)) {
    report.error(
      lines.get('Sequence_Length') ?? lines.get('Sequence_Ports')!,
      `door [${door.name}]: Sequence_Length ${length} needs a range of at least ${minimumRangeSize(length)} ports, but Sequence_Ports has ${size}`,
      `widen Sequence_Ports (a range of ${Math.max(1000, length * 250)} ports is a good start) or shorten Sequence_Length`,
    );
    return true;
  }
  const bits = sequenceBits(size, length);
  if (bits < WEAK_SEQUENCE_BITS) {
    report.warn(
      lines.get('Sequence_Length') ?? lines.get('Sequence_Ports')!,
      `door [${door.name}] has only about 2^${Math.floor(bits)} possible sequences (${length} of ${size} ports): a guesser could hit one`,
      'widen Sequence_Ports or raise Sequence_Length',
    );
  }
  door.rolling = { secret: draft.secret, ports: draft.ports, length, period: draft.period ?? DEFAULT_ROLLING_PERIOD };
  return true;
}

/** log2 of the number of ordered draws of `length` distinct ports out of `size`. */
export function sequenceBits(size: number, length: number): number {
  let bits = 0;
  for (let i = 0; i < length; i++) bits += Math.log2(size - i);
  return bits;
}
