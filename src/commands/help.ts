/** `knocktail help [VERB]`: the overview (the daemon's usage and the verbs), or one verb's usage. */
import { EXIT, parseCommandLine, UsageError } from './common.js';
import { findVerb, unknownVerb } from './verbs.js';

export const USAGE = `usage: knocktail help [VERB]

Prints the usage of VERB (the same as "knocktail VERB --help"), or without VERB the daemon's options and
the list of verbs (the same as "knocktail --help"). The manual page, man knocktail, has it all.

  -h, --help  this help

Exit status: 0 printed, 2 no such verb or bad command line.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, { help: { type: 'boolean', short: 'h', default: false } }, USAGE);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (positionals.length > 1) throw new UsageError(`help takes one verb at most\n\n${USAGE}`);
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
