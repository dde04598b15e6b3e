/** Text from hostile files made safe for a terminal and a log: escapes, clipping, capped repeats. */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { binaryLine, capRepeats, clip, jsonText, messageKind, RepeatLimiter, safeText, WarningStream } from '../src/safe-text.js';

describe('safeText', () => {
  it('escapes control characters, DEL, C1 controls, bidirectional overrides and bytes that were not UTF-8', () => {
    const bytes = Buffer.from([0x41, 0x1b, 0x5b, 0x33, 0x31, 0x6d, 0x00, 0x0d, 0x7f, 0xff, 0x42]);
    assert.equal(safeText(bytes.toString('utf8')), 'A\\x1b[31m\\x00\\r\\x7f\\ufffdB');
    assert.equal(safeText('a\u009bb\u202ec'), 'a\\x9bb\\u202ec');
  });

  it('keeps tabs, newlines and printable non-ASCII text as they are', () => {
    const text = 'Tür\tzu\n  fix: öffnen — ✓';
    assert.equal(safeText(text), text);
  });
});

describe('clip', () => {
  it('keeps the start and the end of an overlong message and says how much is left out', () => {
    const text = `${'a'.repeat(5000)}THE END`;
    const clipped = clip(text, 100);
    assert.ok(clipped.startsWith('a'.repeat(75)));
    assert.ok(clipped.endsWith('THE END'));
    assert.match(clipped, /… \(4,907 characters left out\) …/);
    assert.equal(clip('short', 100), 'short');
  });
});

describe('capRepeats and messageKind', () => {
  it('groups messages that differ only in quoted text and numbers', () => {
    assert.equal(messageKind('f:12: port "x" is invalid'), messageKind('f:13: port "y"z"" is invalid'));
    assert.notEqual(messageKind('f:12: port "x" is invalid'), messageKind('f:12: empty step in "x"'));
  });

  it('keeps the first five of each kind, in order, and counts the rest on the last one kept', () => {
    const items = [...Array.from({ length: 9 }, (_, i) => `f:${i}: "${i}" is bad`), 'f:20: other', ...Array.from({ length: 3 }, (_, i) => `f:${30 + i}: "z" is bad`)];
    const kept = capRepeats(items, messageKind);
    assert.deepEqual(
      kept.map(({ item, more }) => [item, more]),
      [['f:0: "0" is bad', 0], ['f:1: "1" is bad', 0], ['f:2: "2" is bad', 0], ['f:3: "3" is bad', 0], ['f:4: "4" is bad', 7], ['f:20: other', 0]],
    );
  });
});

describe('RepeatLimiter', () => {
  it('admits five of a kind, counts the rest, and reports the count with the last one at flush', () => {
    const reports: string[] = [];
    const limiter = new RepeatLimiter((summary) => reports.push(summary), 60_000);
    const admitted = Array.from({ length: 3812 + 5 }, (_, i) => limiter.admit(`line ${i} is longer than 65536 bytes`)).filter(Boolean).length;
    assert.equal(admitted, 5);
    assert.equal(limiter.admit('another kind'), true);
    limiter.flush();
    assert.deepEqual(reports, ['… and 3,812 more like this in the last 60 s; the last one: line 3816 is longer than 65536 bytes']);
    assert.equal(limiter.admit('line 1 is longer than 65536 bytes'), true, 'a new window starts after flush');
    limiter.flush();
  });
});

describe('WarningStream', () => {
  it('writes each line escaped, caps alike lines and prints the count at finish', () => {
    const target = new PassThrough();
    let out = '';
    target.on('data', (chunk) => (out += chunk));
    const stream = new WarningStream(target);
    for (let i = 0; i < 8; i++) stream.write(`warning: f: line ${i} \x1b[2J is bad\n`);
    stream.finish();
    const lines = out.trimEnd().split('\n');
    assert.equal(lines.length, 6);
    assert.equal(lines[0], 'warning: f: line 0 \\x1b[2J is bad');
    assert.equal(lines[5], '… and 3 more like this; the last one: warning: f: line 7 \\x1b[2J is bad');
    assert.doesNotMatch(out, /\x1b/);
  });
});

describe('jsonText', () => {
  it('is the same JSON value, with C1 controls and bidirectional overrides written \\uXXXX', () => {
    const value = { door: 'a\u009bb\u202ec\x1b' };
    const text = jsonText(value);
    assert.deepEqual(JSON.parse(text), value);
    assert.doesNotMatch(text, /[\u0080-\u009f\u202a-\u202e\x1b]/);
  });
});

describe('binaryLine', () => {
  it('names the line of the first NUL byte, or null for text', () => {
    assert.equal(binaryLine(Buffer.from('a\nb\nc\x00d\n\x00')), 3);
    assert.equal(binaryLine(Buffer.from('7000,8000\n\xff\xfe\n')), null);
  });
});
