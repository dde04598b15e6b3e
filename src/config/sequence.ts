/**
 * The two small value grammars of a door: `Sequence` (also one line of a one-time sequences file)
 * and `TCPFlags`. Both keep knockd's meaning for sensible input and reject what knockd silently
 * turns into something else (negative ports wrap, `abc` becomes port 0, `syn, ack` is refused).
 */
import { TCP_FLAG_NAMES, type Protocol } from '../hit.js';
import type { FlagRule, KnockStep } from './types.js';

/** An invalid `Sequence` or `TCPFlags` value; `message` is user-facing and says what to write instead. */
export class SequenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SequenceError';
  }
}

/** knockd's SEQ_MAX. */
export const MAX_STEPS = 32;

const DECIMAL = /^\d+$/;

/**
 * Parses `7000,8000:udp,9000:tcp`: comma-separated `port[:proto]`, blanks around each part allowed,
 * protocol tcp (default) or udp in any case. knockd ignores a third `:field`; so do we, but
 * `onWarning` hears about it.
 */
export function parseSequence(text: string, onWarning?: (message: string) => void): KnockStep[] {
  if (text.trim() === '') throw new SequenceError('the sequence is empty: list ports like 7000,8000:udp,9000');
  const elements = text.split(',');
  if (elements.length > MAX_STEPS) {
    throw new SequenceError(`${elements.length} steps is too many: knockd allows at most ${MAX_STEPS}`);
  }
  return elements.map((element) => parseStep(element, text, onWarning));
}

function parseStep(element: string, whole: string, onWarning?: (message: string) => void): KnockStep {
  const fields = element.split(':');
  const portText = fields[0]!.trim();
  if (fields.length === 1 && portText === '') {
    throw new SequenceError(`empty step in "${whole}": remove the extra comma`);
  }
  const port = DECIMAL.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new SequenceError(`port "${portText}" is invalid: ports are 1-65535`);
  let proto: Protocol = 'tcp';
  if (fields.length > 1) {
    const protoText = fields[1]!.trim().toLowerCase();
    if (protoText !== 'tcp' && protoText !== 'udp') {
      throw new SequenceError(`protocol "${fields[1]!.trim()}" in "${element.trim()}" is invalid: use tcp or udp`);
    }
    proto = protoText;
  }
  if (fields.length > 2) {
    onWarning?.(`"${element.trim()}": everything after "${portText}:${proto}" is ignored (as knockd does)`);
  }
  return { proto, port };
}

/** knockd's -D form: `7000:tcp,8000:udp`. */
export function formatSequence(steps: readonly KnockStep[]): string {
  return steps.map((step) => `${step.port}:${step.proto}`).join(',');
}

const FLAG_BITS = new Map<string, number>(TCP_FLAG_NAMES);
const FLAG_LIST = `${TCP_FLAG_NAMES.slice(0, -1)
  .map(([name]) => name)
  .join(', ')} or ${TCP_FLAG_NAMES.at(-1)![0]}`;

/**
 * Parses `syn,!ack`: comma-separated flag names in any case, blanks allowed, `!` = must be clear.
 * Within one value a flag may not be both required and forbidden (knockd silently keeps the last).
 */
export function parseTcpFlags(text: string): FlagRule {
  if (text.trim() === '') throw new SequenceError(`TCPFlags is empty: list flags like syn,!ack`);
  const rule: FlagRule = { set: 0, clear: 0 };
  for (const rawToken of text.split(',')) {
    const token = rawToken.trim().toUpperCase();
    const negated = token.startsWith('!');
    const name = negated ? token.slice(1).trim() : token;
    const bit = FLAG_BITS.get(name);
    if (bit === undefined) {
      throw new SequenceError(
        token === '' ? `empty flag in "${text}": remove the extra comma` : `unknown TCP flag "${token}": use ${FLAG_LIST}, each optionally prefixed with ! (must be clear)`,
      );
    }
    if (negated) rule.clear |= bit;
    else rule.set |= bit;
  }
  const both = rule.set & rule.clear;
  if (both) {
    throw new SequenceError(`${flagRuleTokens({ set: both, clear: 0 }).join(', ')} both required and forbidden in "${text}": keep one of them`);
  }
  return rule;
}

/** A later TCPFlags line overrides the earlier state of each flag it names (knockd's accumulation). */
export function mergeFlagRules(earlier: FlagRule, later: FlagRule): FlagRule {
  const named = later.set | later.clear;
  return { set: (earlier.set & ~named) | later.set, clear: (earlier.clear & ~named) | later.clear };
}

/** knockd's tokens for a rule, in header order: `SYN`, `!ACK`. */
export function flagRuleTokens(rule: FlagRule): string[] {
  const tokens: string[] = [];
  for (const [name, bit] of TCP_FLAG_NAMES) {
    if (rule.set & bit) tokens.push(name);
    else if (rule.clear & bit) tokens.push(`!${name}`);
  }
  return tokens;
}
