/**
 * The running daemon never writes raw bytes from a hostile file to its log or terminal, and a file of junk
 * gives a few warnings and a count, not a warning per line.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { knock, linesOf, scratch, startDaemon, waitFor } from './harness.js';

const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]/;

describe('daemon: hostile text in a one-time sequences file', () => {
  it('a file filled with junk while running: five warnings and one count, escaped, in the log file and on stderr', async () => {
    const s = scratch('[ot]\n  one_time_sequences = ot.txt\n  start_command = echo "start ot %IP%" >> CMDS\n');
    const sequences = join(s.dir, 'ot.txt');
    writeFileSync(sequences, '7000\n');
    const daemon = await startDaemon(s, '--from-end');
    try {
      const junk = Array.from({ length: 3000 }, (_, i) => `\x1b]0;owned\x07\r\u202e${i}x`).join('\n');
      writeFileSync(sequences, `7000\n${junk}\n7001\n`);
      knock(s, '192.0.2.90', 7000);
      await waitFor('the open and the warnings about the rest of the file', () => linesOf(s.commands).length === 1 && /more like this/.test(readFileSync(s.logFile, 'utf8')), () => daemon.output);
    } finally {
      assert.equal((await daemon.stop()).code, 0);
    }
    const log = readFileSync(s.logFile, 'utf8');
    assert.doesNotMatch(log, CONTROL, 'no raw control characters in the log file');
    assert.doesNotMatch(daemon.output, CONTROL, 'none on the terminal');
    const invalid = log.split('\n').filter((line) => line.includes('ot.txt:') && line.includes('is invalid'));
    assert.equal(invalid.length, 5, invalid.join('\n'));
    assert.match(invalid[0]!, /ot\.txt:2: port "\\x1b\]0;owned\\x07\\r\\u202e0x" is invalid/);
    assert.match(log, /ot\.txt: … and 2,995 more like this\n/);
    assert.equal(readFileSync(sequences, 'utf8').split('\n')[0], '#7000', 'the used sequence is marked');
  });
});
