/**
 * What a config directive is, and the value grammars the directive tables share. The tables live with their
 * subject (parse.ts: knockd's directives and knocktail's options; rolling.ts: rolling doors; encrypted-door.ts:
 * encrypted knocks); parse.ts dispatches to them and adds file, line and directive name to every InvalidValue.
 */
import { resolve } from 'node:path';
import { trimC } from './reader.js';
import type { DoorConfig } from './types.js';

/** A value that cannot be used; the dispatcher adds file, line and directive name. */
export class InvalidValue extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export interface ValueContext {
  baseDir: string;
  warn(message: string): void;
}

export interface Directive<Target> {
  /** Documented spelling, used in messages. */
  name: string;
  aliases?: string[];
  apply(target: Target, value: string, context: ValueContext): void;
}

export interface DoorDirective extends Directive<DoorConfig> {
  /** TCPFlags adds to earlier lines instead of replacing them. */
  accumulates?: boolean;
}

const YES = new Set(['yes', 'true', 'on', '1']);
const NO = new Set(['no', 'false', 'off', '0']);

export function yesNo(value: string): boolean {
  const word = value.toLowerCase();
  if (YES.has(word)) return true;
  if (NO.has(word)) return false;
  throw new InvalidValue(`expected yes or no, got "${value}"`, 'write yes or no (true/false, on/off and 1/0 work too)');
}

export function wholeNumber(value: string, min: number, max: number, unit: string): number {
  const number = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(number) || number < min || number > max) {
    throw new InvalidValue(
      `expected a whole number of ${unit} from ${min} to ${max}, got "${value}"`,
      number > max ? `${max} is the most knocktail accepts here` : 'write a plain decimal number',
    );
  }
  return number;
}

export function list(value: string, what: string): string[] {
  const items = value.split(',').map(trimC);
  if (items.some((item) => item === '')) throw new InvalidValue(`empty ${what} in "${value}"`, `write ${what}s separated by single commas`);
  return items;
}

/** A path, relative ones resolved against the config file's directory. */
export function path(value: string, context: ValueContext): string {
  if (value === '') throw new InvalidValue('expected a path', 'write a file or directory path (relative paths start at the config file\'s directory)');
  return resolve(context.baseDir, value);
}
