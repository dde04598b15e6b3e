/**
 * The directives of a door opened by encrypted knocks (docs/encrypted-knocks.md): Knock_Key, Port_Span,
 * Allowed_Ports, Max_Duration, Knock_Window, Trust_Knock_IP; and the whole-door checks that run once
 * every line is read. The parser (parse.ts) adds ENCRYPTED_DOOR_DIRECTIVES to its door table and calls
 * checkEncryptedDoors() when it finishes.
 */
import type { Protocol } from '../hit.js';
import { MAX_SPAN_BITS, MAX_WINDOW_SECONDS, MIN_SPAN_BITS } from '../knocks/format.js';
import type { Report } from './reader.js';
import { createSecretKey } from 'node:crypto';
import { type SecretFile, secretFileDirective } from './secret-file.js';
import { formatSequence } from './sequence.js';
import type { DoorConfig, EncryptedKnocks, PortRange } from './types.js';
import { InvalidValue, list, path, wholeNumber, yesNo, type ValueContext } from './directive.js';

/** The format carries durations as 16-bit seconds. */
const MAX_DURATION_SECONDS = 65_535;
const DEFAULTS = { maxDuration: 3600, window: 60 };

/** Placeholders filled from an encrypted message; elsewhere they stay literal text, as knockd leaves them. */
const REQUEST_PLACEHOLDERS = ['%PORT%', '%DURATION%', '%KNOCK_IP%'] as const;

/** Stands in until Knock_Key is read; a door left with it is rejected by checkEncryptedDoors(). */
const NO_KEY: SecretFile = { path: '', key: createSecretKey(Buffer.alloc(1)), size: 0, uid: 0, mode: 0 };

function encrypted(door: DoorConfig): EncryptedKnocks {
  door.encrypted ??= { key: NO_KEY, span: [], allowedPorts: [], maxDuration: DEFAULTS.maxDuration, window: DEFAULTS.window, trustKnockIp: false };
  return door.encrypted;
}

const RANGE = /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?(?:\s*:\s*([a-z]+))?$/i;

function portRange(item: string, protocols: boolean): PortRange {
  const match = RANGE.exec(item);
  const example = protocols ? 'write ranges like 40000-40511 or 40000-40511:udp' : 'write ports and ranges like 22, 8000-8099';
  if (match === null) throw new InvalidValue(`"${item}" is not a port or port range`, example);
  const [first, last] = [Number(match[1]), Number(match[2] ?? match[1])];
  if (first < 1 || last > 65535 || first > last) throw new InvalidValue(`"${item}" is not a range of ports 1-65535, low to high`, example);
  let proto: Protocol = 'tcp';
  if (match[3] !== undefined) {
    const word = match[3].toLowerCase();
    if (!protocols) throw new InvalidValue(`"${item}": Allowed_Ports lists port numbers only`, 'the commands decide the protocol; write 22, 443, 8000-8099');
    if (word !== 'tcp' && word !== 'udp') throw new InvalidValue(`protocol "${match[3]}" in "${item}" is invalid`, 'use tcp or udp');
    proto = word;
  }
  return { proto, first, last };
}

function portSpan(value: string): PortRange[] {
  const ranges = list(value, 'port range').map((item) => portRange(item, true));
  for (let i = 0; i < ranges.length; i++) {
    for (let j = 0; j < i; j++) {
      const [a, b] = [ranges[j]!, ranges[i]!];
      if (a.proto === b.proto && a.first <= b.last && b.first <= a.last) {
        throw new InvalidValue(`${formatRange(b)} overlaps ${formatRange(a)}`, 'every port may appear once in a span');
      }
    }
  }
  const size = ranges.reduce((sum, range) => sum + range.last - range.first + 1, 0);
  const [min, max] = [2 ** MIN_SPAN_BITS, 2 ** MAX_SPAN_BITS];
  if (!Number.isInteger(Math.log2(size)) || size < min || size > max) {
    const lower = 2 ** Math.floor(Math.log2(size));
    const options = [lower >= min && lower <= max ? `${lower} (remove ${size - lower})` : null, size < max ? `${Math.max(min, lower * 2)} (add ${Math.max(min, lower * 2) - size})` : null];
    throw new InvalidValue(
      `the span has ${size} ports; it must have a power of two from ${min} to ${max}`,
      `make it ${options.filter((option) => option !== null).join(' or ')} ports, e.g. 40000-${40000 + Math.max(min, Math.min(max, lower)) - 1}`,
    );
  }
  return ranges;
}

function allowedPorts(value: string): Array<{ first: number; last: number }> {
  return list(value, 'port').map((item) => {
    const { first, last } = portRange(item, false);
    return { first, last };
  });
}

/** As written in the config: `40000-40511`, `40000-40511:udp`, `7000`. */
export function formatRange(range: { first: number; last: number; proto?: Protocol }): string {
  const ports = range.first === range.last ? `${range.first}` : `${range.first}-${range.last}`;
  return range.proto === 'udp' ? `${ports}:udp` : ports;
}

/** Added to the parser's door directives. */
export const ENCRYPTED_DOOR_DIRECTIVES = [
  { name: 'Knock_Key', apply: (door: DoorConfig, value: string, context: ValueContext) => { encrypted(door).key = secretFileDirective(path(value, context)); } },
  { name: 'Port_Span', apply: (door: DoorConfig, value: string) => { encrypted(door).span = portSpan(value); } },
  { name: 'Allowed_Ports', apply: (door: DoorConfig, value: string) => { encrypted(door).allowedPorts = allowedPorts(value); } },
  { name: 'Max_Duration', apply: (door: DoorConfig, value: string) => { encrypted(door).maxDuration = wholeNumber(value, 1, MAX_DURATION_SECONDS, 'seconds'); } },
  { name: 'Knock_Window', apply: (door: DoorConfig, value: string) => { encrypted(door).window = wholeNumber(value, 1, MAX_WINDOW_SECONDS, 'seconds'); } },
  { name: 'Trust_Knock_IP', apply: (door: DoorConfig, value: string) => { encrypted(door).trustKnockIp = yesNo(value); } },
];

const OWN_DIRECTIVES = ENCRYPTED_DOOR_DIRECTIVES.map((directive) => directive.name);
/** A door is opened by one kind of knock: these come from knockd and from rolling sequences (issue 12). */
const OTHER_KNOCK_DIRECTIVES = ['Sequence', 'One_Time_Sequences', 'Sequence_Secret', 'Sequence_Ports', 'Sequence_Length', 'Sequence_Period'];
const REQUIRED: ReadonlyArray<readonly [name: string, example: string]> = [
  ['Knock_Key', 'Knock_Key = /etc/knocktail/DOOR.key (32 random bytes, chmod 600)'],
  ['Port_Span', 'Port_Span = 40000-41023'],
  ['Allowed_Ports', 'Allowed_Ports = 22'],
];
/** Directives of a door that mean nothing once the message decides. */
const IGNORED: ReadonlyArray<readonly [name: string, why: string]> = [
  ['Cmd_Timeout', 'the stop runs after the duration the message asks for (at most Max_Duration)'],
  ['Ignore_Repeats', 'repeated knocks never break an encrypted message'],
];

/** What the parser knows of a door once every line is read. */
interface DoorLines {
  door: DoorConfig;
  /** Line where each directive (documented spelling) was last written. */
  lines: Map<string, number>;
}

/** Whole-door checks of encrypted doors, and the request placeholders of the others. */
export function checkEncryptedDoors(doors: readonly DoorLines[], report: Report): void {
  for (const { door, lines } of doors) {
    if (door.encrypted === null) {
      literalPlaceholders(door, report);
      continue;
    }
    const own = OWN_DIRECTIVES.filter((name) => lines.has(name));
    const first = Math.min(...own.map((name) => lines.get(name)!));
    for (const [name, example] of REQUIRED) {
      if (!lines.has(name)) report.error(first, `door [${door.name}] has ${own.join(', ')} but no ${name}`, `add ${example}`);
    }
    for (const other of OTHER_KNOCK_DIRECTIVES.filter((name) => lines.has(name))) {
      const line = lines.get(other)!;
      report.error(
        Math.max(line, first),
        `door [${door.name}] has both ${other} (line ${line}) and encrypted knocks (${own[0]}, line ${lines.get(own[0]!)})`,
        `a door opens for one kind of knock: remove ${other}, or give the encrypted knocks a door of their own`,
      );
    }
    for (const [name, why] of IGNORED) {
      if (lines.has(name)) report.warn(lines.get(name)!, `${name} has no effect in door [${door.name}] with Knock_Key: ${why}`, `remove ${name}`);
    }
    spanOverlaps(door, doors, lines, report);
  }
}

function literalPlaceholders(door: DoorConfig, report: Report): void {
  const commands = [door.startCommand, door.startCommand6, door.stopCommand, door.stopCommand6];
  for (const placeholder of REQUEST_PLACEHOLDERS) {
    if (commands.some((command) => command?.includes(placeholder))) {
      report.warn(door.at.line, `${placeholder} in the commands of door [${door.name}] stays as it is: it is filled in only in doors with Knock_Key`, `remove ${placeholder}, or make [${door.name}] an encrypted door`);
    }
  }
}

/** Ports the span shares with another door's sequence or with this door's Allowed_Ports: knocks there would be lost or misread. */
function spanOverlaps(door: DoorConfig, doors: readonly DoorLines[], lines: Map<string, number>, report: Report): void {
  const span = door.encrypted!.span;
  const inSpan = (proto: Protocol, port: number): boolean => span.some((range) => range.proto === proto && port >= range.first && port <= range.last);
  for (const other of doors) {
    const shared = other.door.sequence.filter((step) => inSpan(step.proto, step.port));
    if (other.door !== door && shared.length > 0) {
      report.warn(
        lines.get('Port_Span')!,
        `the Port_Span of door [${door.name}] includes ${formatSequence(shared)} of door [${other.door.name}] (line ${other.door.at.line}): each door's knocks disturb the other's`,
        'give the doors ports of their own',
      );
    }
  }
  const opened = door.encrypted!.allowedPorts.filter((range) => span.some((s) => s.first <= range.last && range.first <= s.last));
  if (opened.length > 0) {
    report.warn(
      lines.get('Allowed_Ports')!,
      `Allowed_Ports ${opened.map((range) => formatRange(range)).join(', ')} of door [${door.name}] lie on its Port_Span: once open, knocks there may no longer be logged`,
      'keep the ports a door opens off its span',
    );
  }
}
