/** `knocktail help [COMMAND]`: the overview (the daemon's usage and the commands), or one command's usage. */
import { EXIT, parseCommandLine, UsageError } from './common.js';
import { findVerb, unknownVerb } from './verbs.js';

export const USAGE = `usage: knocktail help [COMMAND]

Prints the usage of COMMAND (the same as "knocktail COMMAND --help"), or without COMMAND the daemon's
options and the list of commands (the same as "knocktail --help"). man knocktail has it all.

  -h, --help  this help

Exit status: 0 printed, 2 no such command or bad command line.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, { help: { type: 'boolean', short: 'h', default: false } }, USAGE);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (positionals.length > 1) throw new UsageError(`help takes one command at most\n\n${USAGE}`);
  const name = positionals[0];
  if (name === undefined) {
    process.stdout.write(`${(await import('./daemon.js')).USAGE}\n`);
    return EXIT.ok;
  }
  const verb = findVerb(name);
  if (verb === undefined) throw new UsageError(unknownVerb(name));
  process.stdout.write(`${(await verb.load()).USAGE}\n`);
  return EXIT.ok;
}
