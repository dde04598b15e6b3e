/**
 * The verbs of the command line (`knocktail VERB …`): what cli.ts dispatches to, what `knocktail help`
 * and the daemon's usage list, and what an unknown verb is compared with. A verb's module is loaded only
 * when it runs, so `knocktail status` never loads the daemon.
 */
import { closest } from '../config/parse.js';

export interface CommandModule {
  /** The verb's usage, as `knocktail VERB --help` and `knocktail help VERB` print it. */
  USAGE: string;
  run(argv: string[]): Promise<number>;
}

export interface Verb {
  name: string;
  /** Its arguments and what it does, for the overview: `replay [options] FILE…  what the doors…`. */
  synopsis: string;
  load(): Promise<CommandModule>;
}

export const VERBS: readonly Verb[] = [
  { name: 'replay', synopsis: 'replay [options] FILE…      what the doors would have done for archived logs', load: () => import('./replay.js') },
  { name: 'check-config', synopsis: 'check-config [-c FILE]      parse a config and explain every door', load: () => import('./check-config.js') },
  { name: 'test-format', synopsis: 'test-format [options] FILE  try a log format against a log file', load: () => import('./test-format.js') },
  { name: 'status', synopsis: 'status [-c FILE] [--json]   what the running daemon is doing', load: () => import('./status.js') },
  { name: 'help', synopsis: 'help [VERB]                 this overview, or one verb\'s usage', load: () => import('./help.js') },
];

export function findVerb(name: string): Verb | undefined {
  return VERBS.find((verb) => verb.name === name);
}

/** Two lines for a verb that does not exist: what was wrong (with a likely meant one), and the verbs there are. */
export function unknownVerb(name: string): string {
  const near = closest(name, VERBS.map((verb) => verb.name));
  return (
    `unknown command "${name}"${near === null ? '' : ` (did you mean ${near}?)`}\n` +
    `commands: ${VERBS.map((verb) => verb.name).join(', ')}; "knocktail help COMMAND" shows how to use one`
  );
}
