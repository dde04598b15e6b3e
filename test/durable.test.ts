import assert from 'node:assert/strict';
import { chmodSync, lstatSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeFileAtomically } from '../src/durable.js';
import { tempDir } from './helpers.js';

describe('writeFileAtomically', () => {
  it('creates a new file with the given mode and leaves no temp file', () => {
    const dir = tempDir();
    const path = join(dir, 'state.json');
    writeFileAtomically(path, '{"a":1}');
    assert.equal(readFileSync(path, 'utf8'), '{"a":1}');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    writeFileAtomically(join(dir, 'other'), new Uint8Array([0, 255, 10]), 0o640);
    assert.equal(statSync(join(dir, 'other')).mode & 0o777, 0o640);
    assert.deepEqual(readdirSync(dir).sort(), ['other', 'state.json']);
  });

  it("replaces an existing file's content but keeps its mode", () => {
    const dir = tempDir();
    const path = join(dir, 'seq');
    writeFileSync(path, 'old');
    chmodSync(path, 0o644);
    writeFileAtomically(path, 'new');
    assert.equal(readFileSync(path, 'utf8'), 'new');
    assert.equal(statSync(path).mode & 0o777, 0o644);
  });

  it('writes through a symlink to the real file and keeps the link', () => {
    const dir = tempDir();
    const real = join(dir, 'real');
    const link = join(dir, 'link');
    writeFileSync(real, 'old');
    symlinkSync(real, link);
    writeFileAtomically(link, 'new');
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.equal(readFileSync(real, 'utf8'), 'new');
  });

  it('throws and leaves the old content when the directory is missing', () => {
    assert.throws(() => writeFileAtomically('/nonexistent-dir/x', 'data'), /ENOENT/);
  });
});
