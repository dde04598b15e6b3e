/**
 * `knocktail knock`: knockd's `knock` client (same options, same exit statuses), plus knocking a config's door by
 * name, and sending an encrypted door's message (docs/encrypted-knocks.md).
 */
import { randomBytes } from 'node:crypto';
import { doorSteps, findDoor } from '../client/door.js';
import { MESSAGE_DELAY_MS, messageKnocks, natProblem, openForProblem, sourceAddressTowards } from '../client/encrypted.js';
import { type Family, KnockError, type KnockTarget, resolveTarget, sendKnocks } from '../client/send.js';
import { canonicalIp } from '../address.js';
import { parseSequence, SequenceError } from '../config/sequence.js';
import type { DoorConfig, KnockStep } from '../config/types.js';
import type { KnockRequest } from '../knocks/format.js';
import { VERSION } from '../version.js';
import { EXIT, loadConfigOrReport, parseCommandLine, UsageError } from './common.js';

export const USAGE = `usage: knocktail knock [-u] [-d MS] [-4|-6] [-v] HOST PORT[:tcp|udp]…
       knocktail knock -c FILE [-d MS] [-4|-6] [-v] HOST DOOR
       knocktail knock -c FILE [-d MS] [-4|-6] [-v] HOST DOOR --port PORT --for SECONDS [--ip ADDRESS]

Knocks on HOST as knockd's knock does, without root: a TCP knock is a connection attempt abandoned at
once (its SYN is the knock), a UDP knock is one datagram. HOST is a name or an IPv4/IPv6 address. With
-c, knocks the sequence of DOOR from a config; a copy holding only that door is enough (for a rolling
door, with its Sequence_Secret file): a rolling door gets the sequence of the current period.

An encrypted door (Knock_Key; the copy needs its key file) gets one message asking it to open PORT for
SECONDS, for the address the knocks come from (a warning tells when NAT will change it), or for ADDRESS
(behind NAT: your public address). The server's Allowed_Ports and Max_Duration decide what it grants.
The knocks go ${MESSAGE_DELAY_MS} ms apart unless -d says otherwise: they must arrive in order.

  -u, --udp           every knock UDP (default TCP; per port: 8000:udp)
  -d, --delay MS      wait MS milliseconds between knocks (default 0; ${MESSAGE_DELAY_MS} for an encrypted door)
  -4, --ipv4          IPv4 only
  -6, --ipv6          IPv6 only
  -c, --config FILE   knock DOOR's sequence from this config
      --port PORT     encrypted door: the port to open, 1-65535
      --for SECONDS   encrypted door: for how long, 1-65535 whole seconds
      --ip ADDRESS    encrypted door: open for ADDRESS instead of the knocks' source address
  -v, --verbose       print each knock as it is sent (hitting tcp ADDRESS:PORT), and what a message asks for
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
      port: { type: 'string' },
      for: { type: 'string' },
      ip: { type: 'string' },
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
  const request = messageRequest(values.port, values.for, values.ip);
  const [host, ...rest] = positionals;
  let door: DoorConfig | null = null;
  let steps: readonly KnockStep[] = [];
  if (values.config !== undefined) {
    if (values.udp) throw new UsageError(`-u cannot be combined with -c: the door's sequence says which knocks are UDP\n\n${USAGE}`);
    if (host === undefined || rest.length !== 1) throw new UsageError(`with -c, give HOST and one DOOR name\n\n${USAGE}`);
    const config = loadConfigOrReport(values.config, process.stderr);
    if (config === null) return EXIT.failure;
    door = findDoor(config, rest[0]!);
    if (door.encrypted === null && request !== null) {
      throw new UsageError(`--port, --for and --ip ask an encrypted door (Knock_Key) to open a port; door [${door.name}] opens for its sequence: remove them`);
    }
    if (request === null) steps = doorSteps(door, Date.now());
  } else {
    if (request !== null) throw new UsageError(`--port, --for and --ip go with an encrypted door: -c FILE HOST DOOR --port PORT --for SECONDS\n\n${USAGE}`);
    if (host === undefined || rest.length === 0) throw new UsageError(`give HOST and at least one PORT\n\n${USAGE}`);
    steps = rest.flatMap((arg) => portArgument(arg, values.udp));
  }
  const target = await resolveTarget(host, family);
  const pauseMs = delayMs ?? (request !== null ? MESSAGE_DELAY_MS : 0);
  if (door !== null && request !== null) steps = await message(door, request, target, pauseMs, values.verbose);
  await sendKnocks(target, steps, {
    delayMs: pauseMs,
    onKnock: values.verbose ? (step, to) => process.stdout.write(`hitting ${step.proto} ${to.address}:${step.port}\n`) : undefined,
  });
  return EXIT.ok;
}

/** --port, --for and --ip, checked for shape only (the server's Allowed_Ports and Max_Duration decide); null when none is given. */
function messageRequest(port: string | undefined, duration: string | undefined, ip: string | undefined): KnockRequest | null {
  if (port === undefined && duration === undefined && ip === undefined) return null;
  if (port === undefined || duration === undefined) throw new UsageError(`an encrypted door's message needs both --port PORT and --for SECONDS\n\n${USAGE}`);
  let address: string | null = null;
  if (ip !== undefined) {
    address = ip.includes('%') ? null : canonicalIp(/^\[(.*)\]$/.exec(ip)?.[1] ?? ip);
    if (address === null) throw new UsageError(`--ip "${ip}" is not an IP address: give an IPv4 address (203.0.113.9) or an IPv6 address without a zone`);
    const problem = openForProblem(address);
    if (problem !== null) throw new UsageError(`--ip "${ip}": ${problem}`);
  }
  return {
    port: wholeNumberOption('--port', port, 'a port: give a whole number from 1 to 65535'),
    duration: wholeNumberOption('--for', duration, 'a duration: give whole seconds from 1 to 65535'),
    address,
  };
}

/** 1-65535, as the message carries it. */
function wholeNumberOption(option: string, text: string, what: string): number {
  const value = /^\d{1,5}$/.test(text) ? Number(text) : 0;
  if (value < 1 || value > 65535) throw new UsageError(`${option} "${text}" is not ${what}`);
  return value;
}

/**
 * The knocks of one message to `door`, made now with a fresh nonce. Without --ip it is bound to this host's
 * source address towards the target; a warning says when NAT will change that address, or when the knocks,
 * `delayMs` apart, take longer than the door's Seq_Timeout.
 */
async function message(door: DoorConfig, request: KnockRequest, target: KnockTarget, delayMs: number, verbose: boolean): Promise<KnockStep[]> {
  let source: string | null = null;
  if (request.address === null) {
    source = await sourceAddressTowards(target, door.encrypted!.span[0]!.first);
    const problem = natProblem(source, target.address);
    if (problem !== null) warn(problem);
  }
  const steps = messageKnocks(door, request, { time: Math.floor(Date.now() / 1000), nonce: randomBytes(4), source });
  const takesMs = (steps.length - 1) * delayMs;
  if (takesMs > door.seqTimeout * 1000) {
    warn(`the ${steps.length} knocks of the message, ${delayMs} ms apart, take ${takesMs / 1000} s, longer than the Seq_Timeout of door [${door.name}] (${door.seqTimeout} s): the server will not put the message together; use a smaller -d`);
  }
  if (verbose) {
    const openFor = request.address === null ? `${source} (the address the knocks come from)` : `${request.address} (--ip)`;
    process.stdout.write(`door [${door.name}]: asking to open port ${request.port} for ${request.duration} s for ${openFor}, ${steps.length} knocks\n`);
  }
  return steps;
}

function warn(message: string): void {
  process.stderr.write(`knocktail knock: warning: ${message}\n`);
}

/** `-d -5` is a negative delay for knock's getopt, an option-like value for parseArgs: attach it, so it is judged as a delay. */
function negativeDelayAttached(argv: string[]): string[] {
  return argv.flatMap((arg, index) => {
    if ((arg === '-d' || arg === '--delay') && /^-\d+$/.test(argv[index + 1] ?? '')) return [`--delay=${argv[index + 1]}`];
    if (/^-\d+$/.test(arg) && (argv[index - 1] === '-d' || argv[index - 1] === '--delay')) return [];
    return [arg];
  });
}

/** -d in ms; undefined when not given (the default depends on what is knocked). */
function parseDelay(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
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
