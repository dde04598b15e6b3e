import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeFileAtomically } from '../src/durable.js';
import { directoryLockUnavailable, lockDirectory, needs, repoRoot, tempDir } from './helpers.js';

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

  it('throws when the directory is missing', () => {
    assert.throws(() => writeFileAtomically('/nonexistent-dir/x', 'data'), /ENOENT/);
  });

  it('throws and leaves the old content when no new file can be made beside it', { skip: directoryLockUnavailable }, () => {
    const dir = tempDir();
    const path = join(dir, 'state.json');
    writeFileSync(path, 'old');
    const unlock = lockDirectory(dir) as () => void;
    try {
      assert.throws(() => writeFileAtomically(path, 'new'), /EACCES|EPERM/);
    } finally {
      unlock();
    }
    assert.equal(readFileSync(path, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir), ['state.json']);
  });

  it('throws and leaves the old content, whole, when the disk fills up while the new content is written', { skip: needs({ root: true, tools: ['unshare', 'mount'] }) }, () => {
    // A 16 KiB tmpfs in a mount namespace of its own (gone with the process, whatever happens): the old file
    // fits, the new content does not. A write in place would leave a torn file; the atomic one leaves the old.
    const dir = tempDir();
    const script = `import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
      import { writeFileAtomically } from ${JSON.stringify(join(repoRoot, 'dist', 'src', 'durable.js'))};
      const path = process.argv[1] + '/state.json';
      writeFileSync(path, 'old '.repeat(1000));
      let error = null;
      try { writeFileAtomically(path, 'new '.repeat(10000)); } catch (e) { error = e.message; }
      console.log(JSON.stringify({ error, content: readFileSync(path, 'utf8'), files: readdirSync(process.argv[1]) }));`;
    const child = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=16k knocktail-test "$1" && exec "$2" --input-type=module -e "$3" "$1"', 'sh', dir, process.execPath, script], { encoding: 'utf8' });
    assert.equal(child.status, 0, child.stderr);
    const result = JSON.parse(child.stdout) as { error: string | null; content: string; files: string[] };
    assert.match(result.error ?? 'no error', /ENOSPC/);
    assert.equal(result.content, 'old '.repeat(1000));
    assert.deepEqual(result.files, ['state.json'], 'the temporary file is removed');
  });
});
