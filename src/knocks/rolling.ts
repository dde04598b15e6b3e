/**
 * Rolling sequences (docs/rolling-sequences.md): the sequence of period T = floor(unixtime / period) is
 * drawn from HMAC-SHA-256(secret, label, door name, T), as distinct ports of the door's range. Pure: time
 * is always an argument. Shared by the client (`knock -c`, `sequence`) and the matcher, which asks for a
 * window of accepted periods per hit and gets the same derived arrays until the period changes.
 */
import { createHmac, type KeyObject } from 'node:crypto';
import type { KnockStep, PortRange, RollingConfig } from '../config/types.js';

/** The first bytes of every HMAC message (ASCII), so no other use of the same secret can collide. */
export const ROLLING_LABEL = 'knocktail-rolling-v1';
const LABEL_BYTES = Buffer.from(ROLLING_LABEL, 'ascii');
const WORD_RANGE = 2 ** 32;

/** One block of the HMAC stream: label ‖ u16be(name length) ‖ name ‖ u64be(T) ‖ u32be(block). */
function block(key: KeyObject, name: Buffer, period: number, index: number): Buffer {
  const message = Buffer.alloc(LABEL_BYTES.length + 2 + name.length + 8 + 4);
  let at = LABEL_BYTES.copy(message, 0);
  at = message.writeUInt16BE(name.length, at);
  at += name.copy(message, at);
  at = message.writeBigUInt64BE(BigInt(period), at);
  message.writeUInt32BE(index, at);
  return createHmac('sha256', key).update(message).digest();
}

/**
 * Ports a range of `length`-knock sequences needs: twice the knocks, so the draw below always finishes (a draw
 * can exclude at most the ports drawn and the two neighbours of the last one).
 */
export function minimumRangeSize(length: number): number {
  return 2 * length;
}

/**
 * The sequence of `period` for door `door`: `length` distinct ports of `ports`, drawn without bias from 32-bit
 * words of the HMAC stream. A word at or above the largest multiple of the range size is skipped; so is a port
 * drawn already or next to the previous one (then no scan of the range in order, up or down, can match two
 * knocks in a row).
 */
export function deriveSequence(key: KeyObject, door: string, period: number, ports: PortRange, length: number): KnockStep[] {
  if (!Number.isSafeInteger(period) || period < 0) throw new RangeError(`period ${period} is not a whole number >= 0`);
  const size = ports.last - ports.first + 1;
  if (length < 1 || size < minimumRangeSize(length)) throw new RangeError(`a range of ${size} ports cannot hold ${length} knocks`);
  const name = Buffer.from(door, 'utf8');
  if (name.length > 0xffff) throw new RangeError('door name longer than 65535 bytes');
  const bound = WORD_RANGE - (WORD_RANGE % size);
  const drawn: number[] = [];
  for (let index = 0; drawn.length < length; index++) {
    const words = block(key, name, period, index);
    for (let at = 0; at < words.length && drawn.length < length; at += 4) {
      const word = words.readUInt32BE(at);
      if (word >= bound) continue;
      const port = ports.first + (word % size);
      const previous = drawn[drawn.length - 1];
      if (previous !== undefined && Math.abs(port - previous) === 1) continue;
      if (!drawn.includes(port)) drawn.push(port);
    }
  }
  return drawn.map((port) => ({ proto: ports.proto, port }));
}

/** The period number of a time (ms since the epoch). */
export function periodAt(timeMs: number, periodSeconds: number): number {
  return Math.floor(timeMs / (periodSeconds * 1000));
}

/** The sequences a knock at some time may follow: periods T-1, T and T+1 (clock skew of up to one period). */
export interface RollingWindow {
  /** T, the period of the time asked for. */
  period: number;
  /** Period T-1, T, T+1 with their sequences. */
  accepted: ReadonlyArray<{ period: number; steps: readonly KnockStep[] }>;
}

/** Periods kept derived: a window's three plus the one the next window adds. */
const CACHED_PERIODS = 4;

/** One rolling door's sequences, each period derived once. */
export class RollingSequences {
  private readonly periodMs: number;
  private readonly cache = new Map<number, readonly KnockStep[]>();
  private current: RollingWindow | null = null;

  constructor(
    private readonly door: string,
    private readonly config: Pick<RollingConfig, 'secret' | 'ports' | 'length' | 'period'>,
  ) {
    this.periodMs = config.period * 1000;
  }

  periodAt(timeMs: number): number {
    return Math.floor(timeMs / this.periodMs);
  }

  /** Milliseconds from `timeMs` to the start of the next period. */
  msLeft(timeMs: number): number {
    return (this.periodAt(timeMs) + 1) * this.periodMs - timeMs;
  }

  /** The sequence of one period (frozen; the same array every time while it stays cached). */
  sequence(period: number): readonly KnockStep[] {
    let steps = this.cache.get(period);
    if (steps === undefined) {
      steps = Object.freeze(deriveSequence(this.config.secret.key, this.door, period, this.config.ports, this.config.length).map((step) => Object.freeze(step)));
      if (this.cache.size >= CACHED_PERIODS) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(period, steps);
    }
    return steps;
  }

  /** The accepted periods around `timeMs`; the same object for every time within one period. */
  window(timeMs: number): RollingWindow {
    const period = this.periodAt(timeMs);
    if (this.current?.period !== period) {
      const accepted = [period - 1, period, period + 1].filter((p) => p >= 0).map((p) => ({ period: p, steps: this.sequence(p) }));
      this.current = { period, accepted };
    }
    return this.current;
  }
}
