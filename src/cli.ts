#!/usr/bin/env node
/**
 * Command line entry: `knocktail [options]` runs the daemon with knockd's flags; verbs (commands/verbs.ts)
 * replay archived logs, check a config, try a log format, show the running daemon's status, knock (the client),
 * print a rolling door's sequence and print help.
 */
import { EXIT, UsageError } from './commands/common.js';
import { findVerb, unknownVerb } from './commands/verbs.js';

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  const verb = command === undefined ? undefined : findVerb(command);
  if (verb !== undefined) {
    // `knocktail replay … | head` closes stdout early: stop quietly, as other command-line tools do. (Not the
    // daemon: a lost stdout must not end it with status 0, which a service manager would not restart.)
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(EXIT.ok);
      throw error;
    });
    const module = await verb.load();
    return module.run(argv.slice(1));
  }
  if (command !== undefined && !command.startsWith('-')) throw new UsageError(unknownVerb(command));
  const daemon = await import('./commands/daemon.js');
  return daemon.run(argv);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`knocktail: ${(error as Error).message}\n`);
    process.exitCode = error instanceof UsageError ? EXIT.usage : EXIT.failure;
  },
);
