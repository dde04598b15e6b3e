import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { inspect } from 'node:util';
import { describeSecretFile, keyBytes, readSecretFile, SecretFileError, secretFileProblem } from '../../src/config/secret-file.js';
import { needs, tempDir } from '../helpers.js';
import { writeSecretFile } from '../knocks/support.js';

const FILE = '/etc/knocktail/door.secret';
const stat = (uid: number, mode: number, size = 32, file = true) => ({ uid, mode: (file ? 0o100000 : 0o010000) | mode, size, isFile: () => file });

describe('secretFileProblem: the rules, without touching files', () => {
  test('a root-owned 0600 or 0400 file is fine for root; a user may use a file of their own', () => {
    assert.equal(secretFileProblem(FILE, stat(0, 0o600), 0), null);
    assert.equal(secretFileProblem(FILE, stat(0, 0o400), 0), null);
    assert.equal(secretFileProblem(FILE, stat(1000, 0o600), 1000), null);
    assert.equal(secretFileProblem(FILE, stat(0, 0o600), 1000), null, 'a root-owned file the user can read (e.g. through a capability) is not refused for its owner');
  });

  test('owned by another user: refused, with the chown that fixes it', () => {
    const forRoot = secretFileProblem(FILE, stat(1000, 0o600), 0)!;
    assert.match(forRoot.message, /is owned by uid 1000, not root/);
    assert.equal(forRoot.hint, `chown root: ${FILE}`);
    const forUser = secretFileProblem(FILE, stat(1001, 0o600), 1000)!;
    assert.match(forUser.message, /neither root nor you \(uid 1000\)/);
    assert.equal(forUser.hint, `chown 1000 ${FILE}`);
  });

  test('any permission for group or others: refused, with the chmod that fixes it', () => {
    for (const [mode, who] of [
      [0o640, 'its group'],
      [0o620, 'its group'],
      [0o604, 'others'],
      [0o644, 'others'],
      [0o602, 'others'],
      [0o601, 'others'],
    ] as const) {
      const problem = secretFileProblem(FILE, stat(0, mode), 0)!;
      assert.ok(problem instanceof SecretFileError);
      assert.match(problem.message, new RegExp(`by ${who} \\(mode 0${mode.toString(8)}\\)`));
      assert.equal(problem.hint, `chmod 600 ${FILE}`);
    }
  });

  test('not a regular file, or far too big for a secret: refused', () => {
    assert.match(secretFileProblem(FILE, stat(0, 0o600, 0, false), 0)!.message, /not a regular file/);
    assert.match(secretFileProblem(FILE, stat(0, 0o600, 4097), 0)!.message, /4097 bytes, more than a secret file's 4096/);
    assert.equal(secretFileProblem(FILE, stat(0, 0o600, 4096), 0), null);
  });
});

test('keyBytes: one trailing LF or CRLF is not part of the key, anything else is', () => {
  const cases: Array<[string, string]> = [
    ['abc\n', 'abc'],
    ['abc\r\n', 'abc'],
    ['abc\n\n', 'abc\n'],
    ['abc\r', 'abc\r'],
    ['abc \n', 'abc '],
    ['\n', ''],
    ['abc', 'abc'],
  ];
  for (const [content, key] of cases) assert.equal(keyBytes(Buffer.from(content)).toString(), key, JSON.stringify(content));
});

describe('readSecretFile on real files', () => {
  const dir = tempDir('knocktail-secret-');

  test('a good file: its key (the bytes without the line feed), size, owner and mode; the key never prints', () => {
    const path = writeSecretFile(dir, Buffer.from('0123456789abcdefXYZ\n'), 'good.secret');
    const secret = readSecretFile(path);
    assert.equal(secret.size, 19);
    assert.equal(secret.key.export().toString(), '0123456789abcdefXYZ');
    assert.equal(secret.uid, process.geteuid!());
    assert.equal(secret.mode, 0o600);
    for (const shown of [inspect(secret, { depth: 5 }), JSON.stringify(secret), describeSecretFile(secret)]) {
      assert.ok(!shown.includes('0123456789abcdef'), shown);
    }
    assert.match(describeSecretFile(secret), /good\.secret: 19-byte key, owner .*, mode 0600/);
  });

  test('a symlink to a good file is read through (the checks apply to the file itself)', () => {
    const target = writeSecretFile(dir, Buffer.alloc(20, 7), 'target.secret');
    const link = join(dir, 'link.secret');
    symlinkSync(target, link);
    assert.equal(readSecretFile(link).size, 20);
    chmodSync(target, 0o644);
    assert.throws(() => readSecretFile(link), /link\.secret can be read or written by others/);
  });

  test('refused: missing (with the command that makes one), too short, readable by others, a directory, a FIFO (without hanging)', () => {
    const missing = join(dir, 'missing.secret');
    assert.throws(
      () => readSecretFile(missing),
      (error: unknown) => error instanceof SecretFileError && /cannot read .*missing\.secret/.test(error.message) && error.hint.includes(`head -c 24 /dev/urandom | base64 > ${missing}`),
    );
    const short = writeSecretFile(dir, Buffer.from('fifteen bytes!!\n'), 'short.secret');
    assert.throws(() => readSecretFile(short), /holds 15 bytes; a secret needs at least 16 random bytes/);
    const open = writeSecretFile(dir, Buffer.alloc(32, 1), 'open.secret');
    chmodSync(open, 0o604);
    assert.throws(() => readSecretFile(open), (error: unknown) => error instanceof SecretFileError && error.hint === `chmod 600 ${open}`);
    const directory = join(dir, 'dir.secret');
    mkdirSync(directory, { mode: 0o700 });
    assert.throws(() => readSecretFile(directory), /is not a regular file/);
    const fifo = join(dir, 'fifo.secret');
    assert.equal(spawnSync('mkfifo', ['-m', '600', fifo]).status, 0);
    assert.throws(() => readSecretFile(fifo), /is not a regular file/);
  });

  test('as root: a file owned by another user is refused', { skip: needs({ root: true }) }, () => {
    const path = writeSecretFile(dir, Buffer.alloc(32, 2), 'nobody.secret');
    chownSync(path, 65534, 65534);
    assert.throws(() => readSecretFile(path), (error: unknown) => error instanceof SecretFileError && /owned by uid 65534, not root/.test(error.message) && error.hint === `chown root: ${path}`);
  });
});
