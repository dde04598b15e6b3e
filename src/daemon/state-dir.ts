/** The daemon's state directory: where pending stops, cursors and the control socket live. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type SourceRef } from '../config/types.js';
import { checkStateDirectory } from './preflight.js';

/** Used one-time sequences whose mark could not be written to their file, in the state directory. */
export const UNMARKED_FILE = 'one-time-unmarked.json';

/**
 * Creates the state directory (0700) when missing, with its cursors directory. Throws ConfigError (naming
 * `at`, where StateDir is set) when it is unsafe (see checkStateDirectory); its warnings were given by preflight.
 */
export function prepareStateDirectory(dir: string, at: SourceRef): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    // Something else is there (a file): the check below says so in words, with the config line.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const { errors } = checkStateDirectory(dir, at);
  if (errors.length > 0) throw new ConfigError(errors);
  mkdirSync(join(dir, 'cursors'), { recursive: true, mode: 0o700 });
}
