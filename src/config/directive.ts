/**
 * What a config directive is, and the value grammars several directive tables share. The tables live with
 * their subject (parse.ts: knockd's directives; rolling.ts: rolling doors); parse.ts dispatches to them and
 * adds file, line and directive name to every InvalidValue.
 */
import { resolve } from 'node:path';
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

/** A path, relative ones resolved against the config file's directory. */
export function path(value: string, context: ValueContext): string {
  if (value === '') throw new InvalidValue('expected a path', 'write a file or directory path (relative paths start at the config file\'s directory)');
  return resolve(context.baseDir, value);
}
