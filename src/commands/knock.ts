/** `knocktail knock`: knockd's `knock` client (same options, same exit statuses), plus knocking a config's door by name. */
import { doorSteps, findDoor } from '../client/door.js';
import { type Family, KnockError, resolveTarget, sendKnocks } from '../client/send.js';
import { parseSequence, SequenceError } from '../config/sequence.js';
import type { KnockStep } from '../config/types.js';
import { VERSION } from '../version.js';
import { EXIT, loadConfigOrReport, parseCommandLine, UsageError } from './common.js';

export const USAGE = `usage: knocktail knock [-u] [-d MS] [-4|-6] [-v] HOST PORT[:tcp|udp]…
       knocktail knock -c FILE [-d MS] [-4|-6] [-v] HOST DOOR

Knocks on HOST as knockd's knock does, without root: a TCP knock is a connection attempt abandoned at
once (its SYN is the knock), a UDP knock is one datagram. HOST is a name or an IPv4/IPv6 address. With
-c, knocks the sequence of DOOR from a config; a copy holding only that door is enough (for a rolling
door, with its Sequence_Secret file): a rolling door gets the sequence of the current period.

  -u, --udp           every knock UDP (default TCP; per port: 8000:udp)
  -d, --delay MS      wait MS milliseconds between knocks
  -4, --ipv4          IPv4 only
  -6, --ipv6          IPv6 only
  -c, --config FILE   knock DOOR's sequence from this config
  -v, --verbose       print each knock as it is sent (hitting tcp ADDRESS:PORT)
  -V, --version       print the version
  -h, --help          this help

A PORT argument may hold several, written as in a config: 7000,8000:udp,9000.

Exit status (as knock's): 0 every knock was sent, 1 anything else (bad command line, unknown host,
door or config, a knock the system refused to send).`;

/** knock's -d is milliseconds; an hour between knocks is already far beyond any Seq_Timeout. */
const MAX_DELAY_MS = 3_600_000;

export async function run(argv: string[]): Promise<number> {
  try {
    return await knock(argv);
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof KnockError)) throw error;
    process.stderr.write(`knocktail knock: ${error.message}\n`);
    return EXIT.failure;
  }
}

async function knock(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    negativeDelayAttached(argv),
    {
      udp: { type: 'boolean', short: 'u', default: false },
      delay: { type: 'string', short: 'd' },
      ipv4: { type: 'boolean', short: '4', default: false },
      ipv6: { type: 'boolean', short: '6', default: false },
      config: { type: 'string', short: 'c' },
      verbose: { type: 'boolean', short: 'v', default: false },
      version: { type: 'boolean', short: 'V', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (values.version) {
    process.stdout.write(`knocktail knock ${VERSION}\n`);
    return EXIT.ok;
  }
  if (values.ipv4 && values.ipv6) throw new UsageError(`-4 and -6 exclude each other\n\n${USAGE}`);
  const family: Family | 0 = values.ipv4 ? 4 : values.ipv6 ? 6 : 0;
  const delayMs = parseDelay(values.delay);
  const [host, ...rest] = positionals;
  let steps: readonly KnockStep[];
  if (values.config !== undefined) {
    if (values.udp) throw new UsageError(`-u cannot be combined with -c: the door's sequence says which knocks are UDP\n\n${USAGE}`);
    if (host === undefined || rest.length !== 1) throw new UsageError(`with -c, give HOST and one DOOR name\n\n${USAGE}`);
    const config = loadConfigOrReport(values.config, process.stderr);
    if (config === null) return EXIT.failure;
    steps = doorSteps(findDoor(config, rest[0]!), Date.now());
  } else {
    if (host === undefined || rest.length === 0) throw new UsageError(`give HOST and at least one PORT\n\n${USAGE}`);
    steps = rest.flatMap((arg) => portArgument(arg, values.udp));
  }
  const target = await resolveTarget(host, family);
  await sendKnocks(target, steps, {
    delayMs,
    onKnock: values.verbose ? (step, to) => process.stdout.write(`hitting ${step.proto} ${to.address}:${step.port}\n`) : undefined,
  });
  return EXIT.ok;
}

/** `-d -5` is a negative delay for knock's getopt, an option-like value for parseArgs: attach it, so it is judged as a delay. */
function negativeDelayAttached(argv: string[]): string[] {
  return argv.flatMap((arg, index) => {
    if ((arg === '-d' || arg === '--delay') && /^-\d+$/.test(argv[index + 1] ?? '')) return [`--delay=${argv[index + 1]}`];
    if (/^-\d+$/.test(arg) && (argv[index - 1] === '-d' || argv[index - 1] === '--delay')) return [];
    return [arg];
  });
}

function parseDelay(text: string | undefined): number {
  if (text === undefined) return 0;
  if (/^-\d+$/.test(text)) throw new UsageError('delay cannot be negative');
  const ms = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(ms <= MAX_DELAY_MS)) throw new UsageError(`-d "${text}" is not a delay: give whole milliseconds from 0 to ${MAX_DELAY_MS}`);
  return ms;
}

/** One PORT argument: `7000`, `8000:udp`, or several as in a config (`7000,8000:udp`); -u makes them all UDP. */
function portArgument(arg: string, udp: boolean): KnockStep[] {
  let steps: KnockStep[];
  try {
    steps = parseSequence(arg, (message) => process.stderr.write(`knocktail knock: warning: ${message}\n`));
  } catch (error) {
    if (error instanceof SequenceError) throw new UsageError(`"${arg}": ${error.message}`);
    throw error;
  }
  if (!udp) return steps;
  if (/:\s*tcp/i.test(arg)) throw new UsageError(`"${arg}": -u makes every knock UDP; remove -u or the :tcp`);
  return steps.map((step) => ({ proto: 'udp', port: step.port }));
}
