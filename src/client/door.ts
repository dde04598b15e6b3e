/**
 * What a client knocks for a door of a config (`knocktail knock -c`, `knocktail sequence`): its fixed
 * sequence, or a rolling door's sequence of the current period (an encrypted door's message is made by
 * client/encrypted.ts). The config may be a client's copy holding only that door (and its secret file).
 */
import type { Config, DoorConfig, KnockStep } from '../config/types.js';
import { TCP_SYN } from '../hit.js';
import { RollingSequences } from '../knocks/rolling.js';
import { KnockError } from './send.js';

/** The door named `name` (exactly as written between the brackets). */
export function findDoor(config: Config, name: string): DoorConfig {
  const doors = config.doors.filter((door) => door.name === name);
  if (doors.length === 1) return doors[0]!;
  if (doors.length > 1) {
    throw new KnockError(`${config.path} defines door [${name}] ${doors.length} times (lines ${doors.map((door) => door.at.line).join(', ')}): rename all but one`);
  }
  const names = config.doors.map((door) => `[${door.name}]`).join(', ');
  throw new KnockError(`${config.path} has no door [${name}]${names ? `; its doors: ${names}` : ' (it has no doors)'}`);
}

/** The steps to knock on `door` at `timeMs`; a KnockError when a client cannot knock it. */
export function doorSteps(door: DoorConfig, timeMs: number): readonly KnockStep[] {
  if (door.encrypted !== null) {
    throw new KnockError(`door [${door.name}] opens for encrypted messages (Knock_Key): say what to open with --port PORT --for SECONDS`);
  }
  assertSynKnocks(door);
  if (door.rolling !== null) {
    const rolling = rollingSequences(door);
    return rolling.sequence(rolling.periodAt(timeMs));
  }
  if (door.oneTimeSequences !== null) {
    throw new KnockError(
      `door [${door.name}] takes its sequence from the one-time file ${door.oneTimeSequences}, which the server rewrites as sequences are used: ` +
        'knock the next unused line yourself (knocktail knock HOST PORT…)',
    );
  }
  return door.sequence;
}

/** A KnockError when `door` wants TCP knocks a connect() cannot send (its TCPFlags ask for more than a SYN). */
export function assertSynKnocks(door: DoorConfig): void {
  const { set, clear } = door.tcpFlags;
  const knocks = door.encrypted !== null ? door.encrypted.span : door.rolling !== null ? [door.rolling.ports] : door.sequence;
  if (knocks.some((knock) => knock.proto === 'tcp') && ((set & ~TCP_SYN) !== 0 || (clear & TCP_SYN) !== 0)) {
    throw new KnockError(`door [${door.name}] wants TCP knocks with other flags than a plain SYN (TCPFlags), which a connect() cannot send: use a packet tool such as hping3`);
  }
}

/** The derivation of a rolling door (a new object per call: a client asks once). */
export function rollingSequences(door: DoorConfig): RollingSequences {
  if (door.rolling === null) {
    let source = door.oneTimeSequences === null ? 'its sequence is fixed (Sequence)' : `its sequences come from the one-time file ${door.oneTimeSequences}`;
    if (door.encrypted !== null) source = 'it opens for encrypted messages (Knock_Key): knock it with knocktail knock -c FILE HOST DOOR --port PORT --for SECONDS';
    throw new KnockError(`door [${door.name}] is not a rolling door: ${source}`);
  }
  return new RollingSequences(door.name, door.rolling);
}
