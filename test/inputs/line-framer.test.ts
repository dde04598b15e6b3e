/**
 * LineFramer: the one way bytes become lines for the follower and the archive reader, whatever the read
 * boundaries: blocks of ASCII lines, UTF-8 lines whole, over-long lines skipped, NUL holes skipped.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineFramer, type LineSink } from '../../src/inputs/line-framer.js';

interface Framed {
  lines: string[];
  /** Byte offset just past each line's newline, as the sink was told (blocks: computed from their base). */
  ends: number[];
  long: number[];
  blocks: number;
}

function collector(): { sink: LineSink; framed: Framed } {
  const framed: Framed = { lines: [], ends: [], long: [], blocks: 0 };
  const sink: LineSink = {
    block: (text, base) => {
      framed.blocks++;
      let at = 0;
      for (const line of text.split('\n')) {
        at += line.length + 1;
        framed.lines.push(line.endsWith('\r') ? line.slice(0, -1) : line);
        framed.ends.push(base + at);
      }
    },
    line: (text, end) => {
      framed.lines.push(text);
      framed.ends.push(end);
    },
    longLine: (at) => framed.long.push(at),
  };
  return { sink, framed };
}

/** Feeds `bytes` in pieces of `piece` bytes as a stream. */
function pushAll(bytes: Buffer, piece: number, maxLineLength: number): Framed {
  const { sink, framed } = collector();
  const framer = new LineFramer(maxLineLength);
  for (let at = 0; at < bytes.length; at += piece) framer.push(bytes.subarray(at, at + piece), sink);
  framer.end(sink);
  return framed;
}

describe('LineFramer', () => {
  it('frames the same lines whatever the read boundaries, ASCII in blocks and UTF-8 line by line', () => {
    const lines = Array.from({ length: 3000 }, (_, i) => (i % 7 === 0 ? `line ${i} é€😀` : `line ${i} ${'x'.repeat(i % 90)}`));
    const bytes = Buffer.from(`${lines.join('\n')}\n`);
    for (const piece of [1, 3, 7, 100, 4096, 1 << 20]) {
      const framed = pushAll(bytes, piece, 65536);
      assert.deepEqual(framed.lines, lines, `pieces of ${piece} bytes`);
      assert.deepEqual(framed.long, []);
      assert.equal(framed.ends.at(-1), bytes.length, 'the last line ends at the end of the input');
    }
    assert.ok(pushAll(bytes, 1 << 20, 65536).blocks < lines.length / 10, 'ASCII lines come in blocks, not one by one');
  });

  it('tells where every line ends, so a position saved inside a block resumes after that line', () => {
    const bytes = Buffer.from('one\ntwo\r\nthré\nfour\n');
    const framed = pushAll(bytes, 1 << 20, 65536);
    assert.deepEqual(framed.lines, ['one', 'two', 'thré', 'four']);
    assert.deepEqual(framed.ends, [4, 9, 15, 20]);
  });

  it('skips lines over MaxLineLength bytes (not characters), also across reads, and says where they began', () => {
    const limit = 300;
    const text = `first\n${'a'.repeat(limit + 1)}\n${'€'.repeat(150)}\n${'b'.repeat(limit)}\n${'z'.repeat(5000)}\nlast`;
    for (const piece of [1, 64, 1 << 20]) {
      const framed = pushAll(Buffer.from(text), piece, limit);
      assert.deepEqual(framed.lines, ['first', 'b'.repeat(limit), 'last'], `pieces of ${piece}`);
      assert.deepEqual(framed.long, [6, 6 + limit + 2, 6 + limit + 2 + 451 + limit + 1]);
    }
  });

  it('frame() hands back what it could not frame yet: the start of a line, re-offered with more bytes', () => {
    const { sink, framed } = collector();
    const framer = new LineFramer(65536);
    const bytes = Buffer.from('alpha\nbra');
    assert.equal(framer.frame(bytes, 100, sink), 6);
    assert.deepEqual(framed.lines, ['alpha']);
    assert.equal(framer.frame(Buffer.from('bravo\n'), 106, sink), 6);
    assert.deepEqual(framed.lines, ['alpha', 'bravo']);
    assert.deepEqual(framed.ends, [106, 112]);
  });

  it('an over-long line with no newline yet is consumed and the rest of it skipped when it comes', () => {
    const { sink, framed } = collector();
    const framer = new LineFramer(10);
    assert.equal(framer.frame(Buffer.from('x'.repeat(50)), 0, sink), 50);
    assert.equal(framer.skipping, true);
    assert.equal(framer.frame(Buffer.from('yyy\nnext\n'), 50, sink), 9);
    assert.deepEqual(framed.lines, ['next']);
    assert.deepEqual(framed.long, [0]);
  });

  it('skips a run of NUL bytes where a line starts (the hole of a copytruncate)', () => {
    const framed = pushAll(Buffer.concat([Buffer.alloc(4096), Buffer.from('after the hole\nnext\n')]), 1000, 65536);
    assert.deepEqual(framed.lines, ['after the hole', 'next']);
  });

  it('keeps empty lines and reads a last line without newline', () => {
    assert.deepEqual(pushAll(Buffer.from('one\r\n\r\ntwo\n\nthree'), 2, 65536).lines, ['one', '', 'two', '', 'three']);
  });
});
