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
  /** Its arguments and what it does, for the overview. */
  args: string;
  summary: string;
  load(): Promise<CommandModule>;
}

export const VERBS: readonly Verb[] = [
  { name: 'replay', args: '[options] FILE…', summary: 'what the doors would have done for archived logs', load: () => import('./replay.js') },
  { name: 'check-config', args: '[-c FILE] [--json]', summary: 'check a config as the daemon would, explain every door', load: () => import('./check-config.js') },
  { name: 'test-format', args: '[options] FILE…', summary: 'try log formats against log files', load: () => import('./test-format.js') },
  { name: 'status', args: '[-c FILE] [--json]', summary: 'what the running daemon is doing', load: () => import('./status.js') },
  { name: 'knock', args: '[options] HOST PORT…', summary: "knock (knockd's knock client; -c FILE HOST DOOR: a door's sequence)", load: () => import('./knock.js') },
  { name: 'sequence', args: '-c FILE DOOR', summary: "a rolling door's sequence now and next", load: () => import('./sequence.js') },
  { name: 'help', args: '[COMMAND]', summary: "this overview, or one command's usage", load: () => import('./help.js') },
];

/** The overview's lines: `knocktail VERB ARGS` and what it does, aligned after `first` (the daemon's line). */
export function verbLines(first: string, firstSummary: string): string[] {
  const commands = [first, ...VERBS.map((verb) => `knocktail ${verb.name} ${verb.args}`)];
  const width = Math.max(...commands.map((command) => command.length)) + 2;
  return commands.map((command, index) => `${index === 0 ? 'usage: ' : '       '}${command.padEnd(width)}${index === 0 ? firstSummary : VERBS[index - 1]!.summary}`);
}

export function findVerb(name: string): Verb | undefined {
  return VERBS.find((verb) => verb.name === name);
}

/** Two lines for a command that does not exist: what was wrong (with a likely meant one), and the verbs there are. */
export function unknownVerb(name: string): string {
  const near = closest(name, VERBS.map((verb) => verb.name));
  return (
    `unknown command "${name}"${near === null ? '' : ` (did you mean ${near}?)`}\n` +
    `commands: ${VERBS.map((verb) => verb.name).join(', ')}; "knocktail help COMMAND" shows how to use one`
  );
}
