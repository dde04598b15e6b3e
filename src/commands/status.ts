/**
 * `knocktail status`: asks the running daemon (through the root-only control socket in its state
 * directory) what it is doing: open doors and when they close, commands running, knocks in progress,
 * each input's position and lag, counters. `-c` names the config whose StateDir to look in.
 */
import { resolve } from 'node:path';
import { loadConfig } from '../config/parse.js';
import { ConfigError } from '../config/types.js';
import { ControlError, type DaemonStatus, requestStatus } from '../daemon/control.js';
import type { InputStatus } from '../inputs/input.js';
import { DEFAULT_CONFIG, EXIT, parseCommandLine } from './common.js';

export const USAGE = `usage: knocktail status [-c FILE] [--state-dir DIR] [--json]

Shows what the running daemon is doing: open doors (source, since when, when they close), commands
running, knocks in progress, each input's position and lag, and counters.

  -c, --config FILE    the daemon's config, to find its StateDir (default ${DEFAULT_CONFIG})
      --state-dir DIR  ask the daemon of this state directory instead (when the config does not load)
      --json           print the daemon's answer as JSON (times in ms since the epoch)
  -h, --help           print this help

It asks through StateDir/control.sock, which only root can use. Exit status: 0 the daemon answered,
1 no daemon runs there (or it cannot be asked), 2 bad command line.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    {
      config: { type: 'string', short: 'c', default: DEFAULT_CONFIG },
      'state-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (positionals.length > 0) {
    process.stderr.write(`knocktail status: unexpected argument ${JSON.stringify(positionals[0])}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  let stateDir: string;
  if (values['state-dir'] !== undefined) {
    stateDir = resolve(values['state-dir']);
  } else {
    try {
      stateDir = loadConfig(values.config).options.stateDir;
    } catch (error) {
      const message = error instanceof ConfigError ? error.message : (error as Error).message;
      process.stderr.write(`${message}\nknocktail status: cannot find the StateDir in ${values.config}; name it with --state-dir DIR\n`);
      return EXIT.failure;
    }
  }
  let status: DaemonStatus;
  try {
    status = await requestStatus(stateDir);
  } catch (error) {
    if (!(error instanceof ControlError)) throw error;
    process.stderr.write(`knocktail status: ${error.message}\n`);
    return EXIT.failure;
  }
  process.stdout.write(values.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  return EXIT.ok;
}

/** The human-readable report. */
export function formatStatus(status: DaemonStatus): string {
  const { now } = status;
  const out: string[] = [];
  out.push(
    `knocktail ${status.knocktail}, pid ${status.pid}, ${status.state} since ${stamp(status.startedAt)} (${span(now - status.startedAt)})`,
    `config ${status.config}, mode ${status.mode}, state directory ${status.stateDir}`,
    `memory: RSS ${megabytes(status.memory.rss)}, JavaScript heap ${megabytes(status.memory.heapUsed)}`,
    '',
  );

  out.push(status.open.length === 0 ? 'Open doors: none' : `Open doors (${status.open.length}):`);
  for (const door of status.open) {
    const closes = door.closesAt <= now ? `closing now (due ${span(now - door.closesAt)} ago)` : `closes ${stamp(door.closesAt)} (in ${span(door.closesAt - now)})`;
    out.push(`  ${door.door}  ${door.ip}  open since ${stamp(door.openedAt)}, ${closes}`);
  }

  if (status.running.length > 0) {
    out.push(`Commands running (${status.running.length}):`);
    for (const command of status.running) out.push(`  ${command.door}  ${command.ip}  ${command.action} for ${span(now - command.since)}: ${command.command}`);
  }

  const { attempts } = status;
  if (attempts.oldest === null) {
    out.push('Knocks in progress: none');
  } else {
    const oldest = attempts.oldest;
    out.push(
      `Knocks in progress: ${attempts.count} from ${attempts.sources} source(s); oldest: ${oldest.door} ${oldest.ip} ` +
        `at stage ${oldest.stage}/${oldest.of} since ${stamp(oldest.started)}, gives up ${stamp(oldest.deadline)}`,
    );
  }

  out.push(status.inputs.length === 0 ? 'Inputs: none' : 'Inputs:');
  for (const input of status.inputs) out.push(...describeInput(input).map((line) => `  ${line}`));

  const c = status.counters;
  out.push(
    'Counters:',
    `  lines read ${c.linesRead}, recognised ${c.linesMatched}; packets ${c.hits}, knocks on door ports ${c.visible}`,
    `  stages ${c.stages}, opens ${c.opens}, sequence timeouts ${c.timeouts}, sources dropped (MaxSources) ${c.evicted}`,
    `  commands run ${c.commandsRun}, failed ${c.commandsFailed}; stops run ${c.stopsRun}, late ${c.stopsLate}; stops postponed by a repeat knock ${c.extended}`,
    `  knocks refused as older than MaxKnockAge ${c.knocksStale}, as stamped ahead of the clock ${c.knocksFuture}; counted later than stamped (out of order) ${c.knocksReordered}; clock steps ${c.clockSteps}`,
    `  errors ${c.errors}; reloads ${c.reloads}, failed ${c.failedReloads}`,
  );
  return `${out.join('\n')}\n`;
}

/** One input: its id and kind, where it is (file inputs: offset, size, lag), then its other fields as they come. */
function describeInput(input: InputStatus): string[] {
  const { id, kind, ...fields } = input;
  const lines = [`${id} (${kind})`];
  if (typeof fields.offset === 'number' && typeof fields.size === 'number') {
    lines.push(`  position ${fields.offset} of ${fields.size} bytes, lag ${fields.lagBytes ?? 0} bytes${fields.missing === true ? ' (the file is missing)' : ''}`);
    for (const known of ['offset', 'size', 'lagBytes', 'missing', 'path']) delete fields[known];
  }
  const scalars = Object.entries(fields).filter(([, value]) => value === null || typeof value !== 'object');
  if (scalars.length > 0) lines.push(`  ${scalars.map(([key, value]) => `${key} ${value}`).join(', ')}`);
  for (const [key, value] of Object.entries(fields)) {
    if (value === null || typeof value !== 'object') continue;
    const items = Array.isArray(value) ? value : [value];
    for (const item of items) lines.push(`  ${key}: ${flat(item)}`);
  }
  return lines;
}

function flat(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return value.map(flat).join(', ');
  return Object.entries(value)
    .map(([key, inner]) => `${key} ${flat(inner)}`)
    .join(', ');
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** Local time, to the second. */
function stamp(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A duration, roughly: 42 s, 5 min 3 s, 2 h 10 min, 3 d 4 h. */
function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}
