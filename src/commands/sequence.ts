/** `knocktail sequence`: a rolling door's ports now and in the next period, for knocking with other clients. */
import { findDoor, rollingSequences } from '../client/door.js';
import { KnockError } from '../client/send.js';
import type { KnockStep } from '../config/types.js';
import { DEFAULT_CONFIG, EXIT, loadConfigOrReport, parseCommandLine, UsageError } from './common.js';

export const USAGE = `usage: knocktail sequence [-c FILE] [--at TIME] [--json] DOOR

Prints the ports to knock on the rolling door DOOR now (or at TIME) and in the next period, and the
seconds left in the current one: for knocking from a phone app or any other client. Nothing else is
printed: the secret stays in its file.

  -c, --config FILE   config (default ${DEFAULT_CONFIG}); a copy holding the door and its secret file is enough
      --at TIME       compute for TIME instead of now: RFC 3339 (2026-11-21T04:09:00Z) or seconds since the epoch
      --json          one object: {"door", "period", "ports", "next", "secondsLeft"}; "period" is the period's
                      number, "ports" and "next" are lists of {"port", "protocol"}
  -h, --help          this help

Exit status: 0 printed, 1 bad config, no such door or not a rolling door, 2 bad command line.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    {
      config: { type: 'string', short: 'c', default: DEFAULT_CONFIG },
      at: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new UsageError(`give one DOOR name\n\n${USAGE}`);
  const timeMs = values.at === undefined ? Date.now() : parseTime(values.at);
  const config = loadConfigOrReport(values.config, process.stderr);
  if (config === null) return EXIT.failure;
  try {
    const door = findDoor(config, positionals[0]!);
    const rolling = rollingSequences(door);
    const period = rolling.periodAt(timeMs);
    const now = rolling.sequence(period);
    const next = rolling.sequence(period + 1);
    const secondsLeft = Math.ceil(rolling.msLeft(timeMs) / 1000);
    if (values.json) {
      const ports = (steps: readonly KnockStep[]) => steps.map((step) => ({ port: step.port, protocol: step.proto }));
      process.stdout.write(`${JSON.stringify({ door: door.name, period, ports: ports(now), next: ports(next), secondsLeft })}\n`);
    } else {
      process.stdout.write(
        `door [${door.name}]: period ${period} (${door.rolling!.period} s), ${secondsLeft} s left\n` + `now   ${knockArguments(now)}\n` + `next  ${knockArguments(next)}\n`,
      );
    }
    return EXIT.ok;
  } catch (error) {
    if (!(error instanceof KnockError)) throw error;
    process.stderr.write(`knocktail sequence: ${error.message}\n`);
    return EXIT.failure;
  }
}

/** As `knocktail knock HOST …` takes them: `40123 41872:udp`. */
function knockArguments(steps: readonly KnockStep[]): string {
  return steps.map((step) => (step.proto === 'udp' ? `${step.port}:udp` : String(step.port))).join(' ');
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/i;

/** `--at`: RFC 3339 with a zone, or epoch seconds (fractions allowed). */
export function parseTime(text: string): number {
  let ms = NaN;
  if (/^\d+(?:\.\d+)?$/.test(text)) ms = Number(text) * 1000;
  else if (RFC3339.test(text)) ms = Date.parse(text.toUpperCase().replace(' ', 'T'));
  if (!Number.isFinite(ms) || ms > 8.64e15) {
    throw new UsageError(`--at "${text}" is not a time: write RFC 3339 with a zone (2026-11-21T04:09:00Z) or seconds since 1970`);
  }
  return ms;
}
