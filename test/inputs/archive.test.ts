/**
 * readLogFile: how archived text logs are cut into lines (bytes first, decoded in blocks), whatever the
 * chunk and block boundaries, encodings, line ends and over-long lines.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { type Decoded, IGNORED } from '../../src/formats/logformat.js';
import { LineDecoder, tooLongLines } from '../../src/formats/registry.js';
import { readLogFile } from '../../src/inputs/archive.js';
import { openArchive } from '../../src/inputs/archive-source.js';
import { tempDir } from '../helpers.js';

/** Reads `content` as a log file and returns every line the decoder was given, and the warnings. */
async function linesOf(content: string | Buffer, options: { maxLineLength?: number; gzip?: boolean } = {}): Promise<{ lines: string[]; warnings: string[]; tooLong: number }> {
  const file = join(tempDir(), options.gzip ? 'kern.log.gz' : 'kern.log');
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  writeFileSync(file, options.gzip ? gzipSync(bytes) : bytes);
  const lines: string[] = [];
  const warnings: string[] = [];
  // Every line reaches decode(), which records it; no line is a hit, so no batch comes out.
  class RecordingDecoder extends LineDecoder {
    override decode(line: string): Decoded {
      super.decode(line, { input: file, reference: 0, bootTime: 0, fallbackTime: 0, arrival: null });
      lines.push(line);
      return IGNORED;
    }
  }
  const decoder = new RecordingDecoder([]);
  const batches = readLogFile(await openArchive(file), {
    decoderFor: () => decoder,
    maxLineLength: options.maxLineLength ?? 65536,
    bootTime: { ms: 0, guessed: false },
    onWarning: (m) => warnings.push(m),
    watch: null,
    onFileRead: (read) => assert.equal(read.problem, null),
  });
  for await (const batch of batches) assert.fail(`unexpected hits ${JSON.stringify(batch)}`);
  return { lines, warnings, tooLong: tooLongLines(decoder.counters) };
}

/** Lines of varied length (some non-ASCII) adding up to well over one 1 MB read chunk. */
function manyLines(count: number, nonAsciiEvery = 0): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const pad = 'x'.repeat((i * 37) % 300);
    out.push(nonAsciiEvery > 0 && i % nonAsciiEvery === 0 ? `line ${i} é€😀 ${pad}` : `line ${i} ${pad}`);
  }
  return out;
}

describe('readLogFile', () => {
  it('delivers every line exactly once across read chunks and decode blocks', async () => {
    const expected = manyLines(20_000);
    const { lines, warnings } = await linesOf(`${expected.join('\n')}\n`);
    assert.deepEqual(lines, expected);
    assert.deepEqual(warnings, []);
  });

  it('decodes multi-byte UTF-8 characters whole wherever the chunk boundaries fall', async () => {
    const expected = manyLines(20_000, 7);
    const { lines } = await linesOf(`${expected.join('\n')}\n`);
    assert.deepEqual(lines, expected);
  });

  it('puts a 3-byte character exactly across the 1 MB read boundary back together', async () => {
    const head = 'a'.repeat(1024 * 1024 - 1);
    const { lines } = await linesOf(`${head}€tail\nnext\n`, { maxLineLength: 2 * 1024 * 1024 });
    assert.deepEqual(lines, [`${head}€tail`, 'next']);
  });

  it('strips CR of CRLF line ends, keeps empty lines, and reads a last line without newline', async () => {
    const { lines } = await linesOf('one\r\n\r\ntwo\n\nthree');
    assert.deepEqual(lines, ['one', '', 'two', '', 'three']);
  });

  it('reads gzip files the same way', async () => {
    const expected = manyLines(5000, 11);
    const { lines } = await linesOf(`${expected.join('\n')}\n`, { gzip: true });
    assert.deepEqual(lines, expected);
  });

  it('skips lines over MaxLineLength bytes (counted in bytes, not characters) with their line number', async () => {
    const limit = 300;
    const longAscii = 'a'.repeat(limit + 1);
    // 150 characters but 450 bytes.
    const longUtf8 = '€'.repeat(150);
    const exact = 'b'.repeat(limit);
    const { lines, warnings, tooLong } = await linesOf(`first\n${longAscii}\n${longUtf8}\n${exact}\nlast\n`, { maxLineLength: limit });
    assert.deepEqual(lines, ['first', exact, 'last']);
    assert.equal(warnings.length, 2);
    assert.equal(tooLong, 2, 'the decoder counts them as read lines (replay and test-format report them)');
    assert.match(warnings[0]!, /line 2 is longer than 300 bytes; skipped/);
    assert.match(warnings[1]!, /line 3 is longer than 300 bytes; skipped/);
  });

  it('skips an over-long line that spans several read chunks and goes on with the next line', async () => {
    const huge = 'z'.repeat(3 * 1024 * 1024 + 17);
    const { lines, warnings, tooLong } = await linesOf(`before\n${huge}\nafter\nend`, { maxLineLength: 65536 });
    assert.deepEqual(lines, ['before', 'after', 'end']);
    assert.equal(warnings.length, 1);
    assert.equal(tooLong, 1);
    assert.match(warnings[0]!, /line 2 is longer than 65536 bytes; skipped/);
  });

  it('skips an over-long last line without newline', async () => {
    const { lines, warnings } = await linesOf(`ok\n${'y'.repeat(2 * 1024 * 1024)}`, { maxLineLength: 1000 });
    assert.deepEqual(lines, ['ok']);
    assert.equal(warnings.length, 1);
  });
});
