/** The daemon's state directory: where pending stops, cursors and the control socket live, and who may write there. */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Used one-time sequences whose mark could not be written to their file, in the state directory. */
export const UNMARKED_FILE = 'one-time-unmarked.json';

/**
 * The state directory holds the stop commands the daemon runs, so only its user may write there:
 * created 0700 when missing; refused when another user owns it or others can write to it (it is never
 * chmod-ed: StateDir = /tmp must not change /tmp). Readable by others is reported.
 */
export function prepareStateDirectory(dir: string, at: string, warn: (message: string) => void): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    // Something else is there (a file): said below in words, with the config line.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const stats = statSync(dir);
  const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
  if (!stats.isDirectory()) throw new Error(`${at}StateDir ${dir} is not a directory; name a directory of knocktail's own (default /var/lib/knocktail)`);
  const uid = process.getuid?.();
  if (uid !== undefined && stats.uid !== uid) {
    throw new Error(`${at}StateDir ${dir} belongs to uid ${stats.uid}, not to uid ${uid} that knocktail runs as; the commands kept there run as uid ${uid}: chown ${uid} ${dir}, or choose another StateDir`);
  }
  if ((stats.mode & 0o022) !== 0) {
    throw new Error(`${at}StateDir ${dir} is writable by other users (mode ${mode}), who could plant commands knocktail would run: chmod 700 ${dir}, or choose a directory of knocktail's own`);
  }
  if ((stats.mode & 0o077) !== 0) warn(`${at}StateDir ${dir} can be read by other users (mode ${mode}); it holds the addresses and commands of open doors: chmod 700 ${dir}`);
  mkdirSync(join(dir, 'cursors'), { recursive: true, mode: 0o700 });
}
