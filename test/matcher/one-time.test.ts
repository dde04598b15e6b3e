/**
 * One-time sequences (spec §4, §11 cases 25–29) with knockd's bugs fixed, and the file handling itself:
 * byte-exact atomic rewrite, warnings once, exhaustion, unwritable files, reload.
 */
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { directoryLockUnavailable as lockProbe, lockDirectory, tempDir } from '../helpers.js';
import { scanOneTimeSequences } from '../../src/matcher/one-time.js';
import { MemoryUsedKnocks } from '../../src/knocks/used.js';
import { DiskOneTimeFiles } from '../../src/matcher/one-time-files.js';
import { A, A6, B, C, door, hit, oneTimeDoor, Rig } from './support.js';
import { Matcher } from '../../src/matcher/matcher.js';

let files = 0;
/** A fresh one-time sequences file with `content`. */
function sequencesFile(content: string | Buffer): string {
  const dir = join(tempDir('knocktail-onetime-'), `f${files++}`);
  mkdirSync(dir);
  const path = join(dir, 'sequences');
  writeFileSync(path, content);
  return path;
}

const text = (path: string) => readFileSync(path, 'utf8');

describe('§11 one-time cases', () => {
  it('case 25: normal use — deliberate difference: the used line gets "#" inserted (knockd overwrote the first byte)', () => {
    const path = sequencesFile('# my sequences\n 1001,1002\n\n 2001:udp,2002\n3001\n');
    const rig = new Rig([oneTimeDoor('ot', path)]);
    rig.sequence(A, ['tcp/1001', 'tcp/1002']);
    assert.deepEqual(rig.trace('open', 'sequence'), ['open ot 10.88.0.2 @0', 'sequence ot 2001:udp,2002:tcp @0']);
    assert.equal(text(path), '# my sequences\n# 1001,1002\n\n 2001:udp,2002\n3001\n');
    rig.sequence(B, ['tcp/1001', 'tcp/1002'], 1);
    assert.deepEqual(rig.opens(), ['ot 10.88.0.2'], 'a used sequence no longer opens');
    rig.knock(C, 'udp/2001', 2).knock(C, 'tcp/2002', 2);
    assert.deepEqual(rig.opens(), ['ot 10.88.0.2', 'ot 10.88.0.4']);
    assert.equal(text(path), '# my sequences\n# 1001,1002\n\n# 2001:udp,2002\n3001\n');
  });

  it('case 26: deliberate difference — the last sequence disables the door with an exhausted event (knockd: "#001", then a double-free crash)', () => {
    const path = sequencesFile('# my sequences\n# 1001,1002\n\n# 2001:udp,2002\n3001\n');
    const rig = new Rig([oneTimeDoor('ot', path), door('other', '5000')]);
    rig.knock(A, 'tcp/3001', 0);
    assert.deepEqual(rig.trace(), ['stage ot 10.88.0.2 1 @0', 'open ot 10.88.0.2 @0', 'exhausted ot @0']);
    assert.equal(text(path), '# my sequences\n# 1001,1002\n\n# 2001:udp,2002\n#3001\n');
    assert.equal(rig.matcher.watch().watches('tcp', 3001), false);
    assert.deepEqual(rig.matcher.watch().sequences.map((entry) => entry.door.name), ['other']);
    rig.knock(A, 'tcp/3001', 1).knock(A, 'tcp/5000', 1);
    assert.deepEqual(rig.opens(), ['ot 10.88.0.2', 'other 10.88.0.2'], 'the disabled door stays closed; the matcher carries on');
  });

  it('case 27: deliberate difference — after an invalid line exactly the used line is marked, so no sequence works twice (knockd: 2001,2002 opened twice)', () => {
    const path = sequencesFile(' 1001,1002\n 99999,5\n 2001,2002\n 4001\n');
    const rig = new Rig([oneTimeDoor('ot', path)]);
    rig.sequence(A, ['tcp/1001', 'tcp/1002'], 0);
    rig.sequence(A, ['tcp/2001', 'tcp/2002'], 1);
    rig.sequence(A, ['tcp/2001', 'tcp/2002'], 2);
    assert.deepEqual(rig.opens(), ['ot 10.88.0.2', 'ot 10.88.0.2']);
    assert.equal(text(path), '# 1001,1002\n 99999,5\n# 2001,2002\n 4001\n');
    const aboutLine2 = rig.warnings.filter((warning) => warning.startsWith(`${path}:2: `));
    assert.equal(aboutLine2.length, 1, 'the invalid line is reported once, not at every scan');
    assert.match(aboutLine2[0]!, /port "99999" is invalid.*skipped/);
  });

  it('case 28: deliberate difference — no stage carries over into a longer next sequence (knockd: 2002,2003 opened)', () => {
    const path = sequencesFile(' 1001\n 2001,2002,2003\n 3001\n');
    const rig = new Rig([oneTimeDoor('ot', path, { seqTimeout: 10 })]);
    rig.knock(A, 'tcp/1001', 0).knock(A, 'tcp/2002', 1).knock(A, 'tcp/2003', 2);
    assert.deepEqual(rig.opens(), ['ot 10.88.0.2']);
    assert.equal(text(path), '# 1001\n 2001,2002,2003\n 3001\n');
    rig.sequence(A, ['tcp/2001', 'tcp/2002', 'tcp/2003'], 3);
    assert.deepEqual(rig.opens(), ['ot 10.88.0.2', 'ot 10.88.0.2']);
  });

  it('case 28: other sources knocking the used sequence lose their attempts when it changes', () => {
    const path = sequencesFile(' 1001,1002\n 1001,1003\n');
    const rig = new Rig([oneTimeDoor('ot', path)]);
    rig.knock(B, 'tcp/1001', 0).sequence(A, ['tcp/1001', 'tcp/1002'], 1);
    assert.deepEqual(rig.matcher.summary(Infinity).inProgress, []);
    rig.knock(B, 'tcp/1003', 2);
    assert.deepEqual(rig.opens(), ['ot 10.88.0.2'], "B's stage 1 on the old sequence does not count for the new one");
    rig.sequence(B, ['tcp/1001', 'tcp/1003'], 3);
    assert.deepEqual(rig.opens(), ['ot 10.88.0.2', 'ot 10.88.0.3']);
    rig.matcher.expire(Infinity);
    assert.deepEqual(rig.trace('timeout'), [], 'dropped attempts do not time out later');
  });

  it('case 29: deliberate difference — IPv6 knockers see the next sequence too (knockd never captured it over IPv6)', () => {
    const path = sequencesFile(' 1001\n 2001\n 3001\n');
    const rig = new Rig([oneTimeDoor('ot', path)]);
    rig.knock(A6, 'tcp/1001', 0).knock(A6, 'tcp/2001', 1).knock(A, 'tcp/3001', 2);
    assert.deepEqual(rig.opens(), [`ot ${A6}`, `ot ${A6}`, 'ot 10.88.0.2']);
    assert.deepEqual(rig.trace('exhausted'), ['exhausted ot @2']);
  });
});

describe('one-time file rewrite', () => {
  it('keeps every other byte: CRLF, blank and comment lines, non-UTF-8 bytes, no final newline', () => {
    const head = Buffer.concat([Buffer.from('# keys for [ssh]\r\n'), Buffer.from([0x23, 0x20, 0xe9, 0x74, 0xe9, 0x0d, 0x0a])]);
    const original = Buffer.concat([head, Buffer.from('\t1001,1002 \r\n\r\n  # spare\r\n2001:udp\r\n3001')]);
    const path = sequencesFile(original);
    chmodSync(path, 0o640);
    const rig = new Rig([oneTimeDoor('ot', path)]);
    rig.sequence(A, ['tcp/1001', 'tcp/1002'], 0);
    assert.deepEqual(readFileSync(path), Buffer.concat([head, Buffer.from('#\t1001,1002 \r\n\r\n  # spare\r\n2001:udp\r\n3001')]));
    rig.knock(A, 'udp/2001', 1);
    assert.deepEqual(readFileSync(path), Buffer.concat([head, Buffer.from('#\t1001,1002 \r\n\r\n  # spare\r\n#2001:udp\r\n3001')]));
    rig.knock(A, 'tcp/3001', 2);
    assert.deepEqual(readFileSync(path), Buffer.concat([head, Buffer.from('#\t1001,1002 \r\n\r\n  # spare\r\n#2001:udp\r\n#3001')]));
    assert.deepEqual(rig.opens(), ['ot 10.88.0.2', 'ot 10.88.0.2', 'ot 10.88.0.2']);
    assert.equal(statSync(path).mode & 0o777, 0o640, 'permission bits survive the replacement');
    assert.deepEqual(readdirSync(join(path, '..')), ['sequences'], 'no temp file is left behind');
  });

  it('follows a symlink: the real file is replaced, the link stays a link', () => {
    const real = sequencesFile(' 1001\n 2001\n');
    const link = join(tempDir('knocktail-onetime-link-'), 'sequences');
    symlinkSync(real, link);
    const rig = new Rig([oneTimeDoor('ot', link)]);
    rig.knock(A, 'tcp/1001', 0);
    assert.equal(text(real), '# 1001\n 2001\n');
    assert.ok(lstatSync(link).isSymbolicLink());
  });

  it('marks the line that was used even when the file was edited after loading', () => {
    const path = sequencesFile(' 1001,1002\n 2001\n');
    const rig = new Rig([oneTimeDoor('ot', path)]);
    writeFileSync(path, ' 5001\n 1001,1002\n 2001\n');
    rig.sequence(A, ['tcp/1001', 'tcp/1002']);
    assert.equal(text(path), ' 5001\n# 1001,1002\n 2001\n');
    assert.deepEqual(rig.trace('sequence'), ['sequence ot 5001:tcp @0'], 'the next sequence is the first unused line now');
  });

  it('the used line is marked before the open is reported, so its commands never run while it is still unmarked', () => {
    const path = sequencesFile(' 1001,1002\n 2001\n');
    const seenAtOpen: string[] = [];
    const matcher = new Matcher([oneTimeDoor('ot', path)], { maxSources: 10, isLocal: null, oneTimeFiles: new DiskOneTimeFiles(null, () => {}), usedKnocks: new MemoryUsedKnocks() }, (event) => {
      if (event.type === 'open') seenAtOpen.push(text(path));
    });
    matcher.handle(hit(A, 'tcp/1001', 0));
    matcher.handle(hit(A, 'tcp/1002', 0));
    assert.deepEqual(seenAtOpen, ['# 1001,1002\n 2001\n']);
  });

  it('marking leaves the file alone when no unused line has that sequence', () => {
    const path = sequencesFile('# 1001\n 2001\n');
    const scan = new DiskOneTimeFiles(null, () => {}).markUsed(path, [{ proto: 'tcp', port: 1001 }]);
    assert.equal(text(path), '# 1001\n 2001\n');
    assert.deepEqual(scan.unused.map((entry) => entry.line), [2]);
  });
});

describe('one-time file reading', () => {
  it('loading: unused lines with line numbers and byte offsets, problems with file:line', () => {
    const path = sequencesFile('# used\n\t7000, 8000:UDP \n\n 1,2,\n#x\n9000:tcp:junk\r\n 0\n');
    const scan = new DiskOneTimeFiles(null, () => {}).load(path);
    assert.deepEqual(
      scan.unused.map((entry) => ({ line: entry.line, offset: entry.offset, sequence: entry.sequence })),
      [
        { line: 2, offset: 7, sequence: [{ proto: 'tcp', port: 7000 }, { proto: 'udp', port: 8000 }] },
        { line: 6, offset: 34, sequence: [{ proto: 'tcp', port: 9000 }] },
      ],
    );
    assert.deepEqual(
      scan.problems.map((problem) => problem.line),
      [4, 6, 7],
    );
    for (const problem of scan.problems) assert.ok(problem.message.startsWith(`${path}:${problem.line}: `), problem.message);
    assert.match(scan.problems[1]!.message, /ignored/);
  });

  it('an empty file and a file without final newline', () => {
    assert.deepEqual(scanOneTimeSequences(Buffer.alloc(0), 'x').unused, []);
    const last = scanOneTimeSequences(Buffer.from('#a\n1001'), 'x').unused;
    assert.deepEqual(last, [{ line: 2, offset: 3, sequence: [{ proto: 'tcp', port: 1001 }] }]);
  });

  it('a file with no unused line: the door starts disabled and a warning (not an event) says so', () => {
    const path = sequencesFile('# all\n#1001\n');
    const rig = new Rig([oneTimeDoor('ot', path), door('other', '5000')]);
    assert.equal(rig.warnings.length, 1);
    assert.match(rig.warnings[0]!, /no more sequences left in the one time sequences file for door \[ot\] --> disabling the door/);
    assert.ok(rig.warnings[0]!.startsWith(path));
    rig.knock(A, 'tcp/1001', 0).knock(A, 'tcp/5000', 0);
    rig.matcher.expire(Infinity);
    assert.deepEqual(rig.opens(), ['other 10.88.0.2']);
    assert.deepEqual(rig.trace('exhausted'), []);
    assert.deepEqual(rig.matcher.watch().sequences.map((entry) => entry.door.name), ['other']);
  });

  it('a file that cannot be read: warning naming it, door disabled', () => {
    const path = join(tempDir(), 'missing');
    const rig = new Rig([oneTimeDoor('ot', path)]);
    assert.equal(rig.warnings.length, 1);
    assert.ok(rig.warnings[0]!.startsWith(`door [ot] is disabled: ${path}: `) && rig.warnings[0]!.includes('ENOENT'), rig.warnings[0]);
    assert.match(rig.warnings[0]!, /fix the file, then reload$/);
    assert.deepEqual(rig.matcher.watch().sequences, []);
  });

  it('a valid line with an ignored third field is used, with one warning', () => {
    const path = sequencesFile(' 1001:tcp:junk\n 1001:tcp:junk\n');
    const rig = new Rig([oneTimeDoor('ot', path)]);
    rig.knock(A, 'tcp/1001', 0);
    assert.deepEqual(rig.opens(), ['ot 10.88.0.2']);
    assert.deepEqual(
      rig.warnings.map((warning) => warning.slice(path.length)),
      [':1: "1001:tcp:junk": everything after "1001:tcp" is ignored (as knockd does)', ':2: "1001:tcp:junk": everything after "1001:tcp" is ignored (as knockd does)'],
    );
  });
});

describe('one-time file that cannot be written', () => {
  it('fails closed: the door is disabled, the sequence never works again, and a reload marks it once writing works', { skip: lockProbe }, () => {
    const path = sequencesFile(' 1001,1002\n 2001\n');
    const dir = join(path, '..');
    const config = oneTimeDoor('ot', path);
    const rig = new Rig([config]);
    const unlock = lockDirectory(dir) as () => void;
    try {
      rig.sequence(A, ['tcp/1001', 'tcp/1002']);
      assert.deepEqual(rig.trace('open', 'exhausted'), ['open ot 10.88.0.2 @0', 'exhausted ot @0']);
      const exhausted = rig.events.find((event) => event.type === 'exhausted');
      assert.ok(exhausted?.type === 'exhausted' && exhausted.error !== undefined && exhausted.error.includes(path));
      assert.equal(rig.warnings.length, 1);
      assert.match(rig.warnings[0]!, /cannot mark the used sequence 1001:tcp,1002:tcp .*door \[ot\] is disabled/);
      assert.equal(text(path), ' 1001,1002\n 2001\n');
      rig.sequence(B, ['tcp/1001', 'tcp/1002'], 1);
      assert.deepEqual(rig.opens(), ['ot 10.88.0.2']);
      rig.matcher.reload([config]);
      assert.deepEqual(rig.matcher.watch().sequences, [], 'still unwritable: a reload does not bring the used sequence back');
    } finally {
      unlock();
    }
    rig.matcher.reload([config]);
    assert.equal(text(path), '# 1001,1002\n 2001\n', 'the pending mark is written first');
    rig.sequence(B, ['tcp/1001', 'tcp/1002'], 2).knock(B, 'tcp/2001', 2);
    assert.deepEqual(rig.opens(), ['ot 10.88.0.2', 'ot 10.88.0.3']);
  });
});

describe('one-time marks that could not be written, across restarts', () => {
  const unmarkedFile = () => join(tempDir('knocktail-unmarked-'), 'one-time-unmarked.json');

  it('a restart while the file is still unwritable keeps the used sequence closed; once writable, the mark is written', { skip: lockProbe }, () => {
    const path = sequencesFile(' 1001,1002\n 2001\n');
    const state = unmarkedFile();
    const config = oneTimeDoor('ot', path);
    const unlock = lockDirectory(join(path, '..')) as () => void;
    try {
      new Rig([config], { unmarkedFile: state }).sequence(A, ['tcp/1001', 'tcp/1002']);
      assert.deepEqual(JSON.parse(text(state)), { unmarked: { [path]: '1001:tcp,1002:tcp' } });
      const restarted = new Rig([config], { unmarkedFile: state });
      assert.deepEqual(restarted.matcher.watch().sequences, [], 'the used sequence is not offered again');
      restarted.sequence(B, ['tcp/1001', 'tcp/1002'], 1);
      assert.deepEqual(restarted.opens(), []);
      const inMemoryOnly = new Rig([config]);
      assert.deepEqual(inMemoryOnly.matcher.watch().sequences.map((entry) => entry.sequence.length), [2, 1], 'without the record it would be');
    } finally {
      unlock();
    }
    const fixed = new Rig([config], { unmarkedFile: state });
    assert.equal(text(path), '# 1001,1002\n 2001\n');
    assert.deepEqual(JSON.parse(text(state)), { unmarked: {} });
    fixed.knock(B, 'tcp/2001', 2);
    assert.deepEqual(fixed.opens(), ['ot 10.88.0.3']);
  });

  it('a damaged record keeps every one-time door disabled and says how to recover; other doors work', () => {
    const path = sequencesFile(' 1001\n');
    const state = unmarkedFile();
    writeFileSync(state, '{"unmarked": {"/x": 17');
    const rig = new Rig([oneTimeDoor('ot', path), door('plain', '5000')], { unmarkedFile: state });
    assert.deepEqual(rig.matcher.watch().sequences.map((entry) => entry.door.name), ['plain']);
    assert.equal(rig.warnings.length, 1);
    assert.match(rig.warnings[0]!, /door \[ot\] is disabled: the record of unwritten one-time marks .* is not valid JSON .*delete .*one-time-unmarked\.json, then reload/);
    writeFileSync(state, JSON.stringify({ unmarked: { [path]: '1001:tcp,99999' } }));
    assert.match(new Rig([oneTimeDoor('ot', path)], { unmarkedFile: state }).warnings[0]!, /the entry for .* is not a sequence/);
    rig.knock(A, 'tcp/1001', 0).knock(A, 'tcp/5000', 0);
    assert.deepEqual(rig.opens(), ['plain 10.88.0.2']);
  });
});

describe('one-time doors and reload', () => {
  it('a reload re-reads the file: lines added to a used-up file enable the door again', () => {
    const path = sequencesFile(' 1001\n');
    const config = oneTimeDoor('ot', path);
    const rig = new Rig([config]).knock(A, 'tcp/1001', 0);
    assert.deepEqual(rig.trace('exhausted'), ['exhausted ot @0']);
    writeFileSync(path, '# 1001\n 4001\n', { flag: 'w' });
    rig.matcher.reload([config]);
    assert.equal(rig.matcher.watch().watches('tcp', 4001), true);
    rig.knock(A, 'tcp/4001', 1);
    assert.deepEqual(rig.opens(), ['ot 10.88.0.2', 'ot 10.88.0.2']);
  });

  it('an unchanged one-time door (same file, same current line) keeps its attempts; a changed current line drops them', () => {
    const path = sequencesFile(' 1001,1002\n 2001,2002\n');
    const config = oneTimeDoor('ot', path);
    const rig = new Rig([config]).knock(B, 'tcp/1001', 0);
    rig.matcher.reload([config]);
    rig.knock(B, 'tcp/1002', 1);
    assert.deepEqual(rig.opens(), ['ot 10.88.0.3']);
    rig.knock(C, 'tcp/2001', 2);
    writeFileSync(path, '# 1001,1002\n# 2001,2002\n 3001,3002\n');
    rig.matcher.reload([config]);
    assert.deepEqual(rig.matcher.summary(Infinity).inProgress, []);
    assert.deepEqual(rig.matcher.watch().sequences[0]!.sequence, [{ proto: 'tcp', port: 3001 }, { proto: 'tcp', port: 3002 }]);
  });
});
