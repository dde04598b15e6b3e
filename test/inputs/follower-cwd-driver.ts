/**
 * Follows a log given by a relative path in a process of its own, which changes its working directory after the
 * follower was made (follower-rotation.test.ts): the test process itself never changes its cwd.
 * `node THIS --driver RELATIVE-PATH ELSEWHERE`: prints `line <text>` and `warning <text>` per line; stops at SIGTERM.
 * Does nothing without `--driver` (the test runner also loads every file under test/).
 */
import { LogFollower } from '../../src/inputs/follower.js';
import { lineSink } from './follower-harness.js';

async function main(path: string, elsewhere: string): Promise<void> {
  const follower = new LogFollower({
    path,
    maxLineLength: 65536,
    cursorFile: null,
    fromEnd: false,
    lines: lineSink((line) => process.stdout.write(`line ${line}\n`)),
    onWarning: (message) => process.stdout.write(`warning ${message.replaceAll('\n', ' ')}\n`),
  });
  process.chdir(elsewhere); // the configured path must not be re-resolved against a later cwd
  await follower.start();
  process.stdout.write('started\n');
  process.once('SIGTERM', () => void follower.stop().then(() => process.exit(0)));
}

if (process.argv[2] === '--driver') void main(process.argv[3]!, process.argv[4]!);
