/**
 * Durable position of an input (a log follower's files, the journal's cursor), kept as one JSON file.
 * Saving is atomic (temp file, fsync, rename, fsync of the directory): after a crash the file holds
 * either the old or the new position, never a torn one.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomically } from '../durable.js';

export class CursorStore {
  /** The text last written or read, so that saving an unchanged position costs nothing. */
  private lastText: string | null = null;

  constructor(readonly file: string) {}

  /**
   * The saved value, or null when nothing was saved yet. Throws an Error naming the file when it
   * cannot be read or is not JSON; the caller decides what to do without it.
   */
  load(): unknown {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new Error(`cannot read the cursor file ${this.file}: ${(error as Error).message}`);
    }
    try {
      const value: unknown = JSON.parse(text);
      this.lastText = text;
      return value;
    } catch {
      throw new Error(`the cursor file ${this.file} is not valid JSON (damaged?); delete it to start afresh`);
    }
  }

  /** Writes `value` atomically unless it equals what the file already holds. Throws on I/O errors. */
  save(value: unknown): void {
    const text = JSON.stringify(value);
    if (text === this.lastText) return;
    try {
      writeFileAtomically(this.file, text);
    } catch (error) {
      throw new Error(`cannot save the cursor file ${this.file}: ${(error as Error).message} (is its directory there and writable?)`);
    }
    this.lastText = text;
  }
}
