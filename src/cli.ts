#!/usr/bin/env node
/**
 * Command line entry: `knocktail [options]` runs the daemon with knockd's flags; subcommands replay
 * archived logs, check a config, try a log format, show the running daemon's status, knock (the client)
 * and print a rolling door's sequence.
 */
import { EXIT, UsageError } from './commands/common.js';

const COMMANDS: Record<string, () => Promise<{ run: (argv: string[]) => Promise<number> }>> = {
  replay: () => import('./commands/replay.js'),
  'check-config': () => import('./commands/check-config.js'),
  'test-format': () => import('./commands/test-format.js'),
  status: () => import('./commands/status.js'),
  knock: () => import('./commands/knock.js'),
  sequence: () => import('./commands/sequence.js'),
};

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (command !== undefined && Object.hasOwn(COMMANDS, command)) {
    // `knocktail replay … | head` closes stdout early: stop quietly, as other command-line tools do. (Not the
    // daemon: a lost stdout must not end it with status 0, which a service manager would not restart.)
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(EXIT.ok);
      throw error;
    });
    const module = await COMMANDS[command]!();
    return module.run(argv.slice(1));
  }
  const daemon = await import('./commands/daemon.js');
  if (command !== undefined && !command.startsWith('-')) {
    throw new UsageError(`unknown command "${command}"\n\n${daemon.USAGE}`);
  }
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
