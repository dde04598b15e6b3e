import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DAMAGED_SUFFIX, FileStopStore, STOPS_FILE } from '../../src/actions/file-stop-store.js';
import type { PendingStop } from '../../src/actions/stop-store.js';
import { tempDir } from '../helpers.js';

function stop(id: string, due = 1_000_000): PendingStop {
  return { id, door: 'oc', section: 3, ip: '10.66.0.2', command: `close ${id}`, env: { KNOCK_IP: '10.66.0.2' }, due, openedAt: due - 10_000, limitMs: 60_000 };
}

function open(dir: string): { store: FileStopStore; problems: string[] } {
  const problems: string[] = [];
  return { store: new FileStopStore(dir, (problem) => problems.push(problem)), problems };
}

const byId = (stops: PendingStop[]) => [...stops].sort((a, b) => a.id.localeCompare(b.id));

describe('FileStopStore', () => {
  it('keeps what was saved, with its latest due time, and forgets what was deleted, across a reopen', () => {
    const dir = tempDir();
    const { store } = open(dir);
    store.save(stop('a'));
    store.save(stop('b'));
    store.save(stop('a', 2_000_000));
    store.delete('b');
    store.delete('never-saved');
    // No close(): a crash leaves the file as it is.
    const { store: again, problems } = open(dir);
    assert.deepEqual(problems, []);
    assert.deepEqual(again.load(), [stop('a', 2_000_000)]);
  });

  it('keeps the port of a stop opened by an encrypted message, and drops a record with a bad one', () => {
    const dir = tempDir();
    const { store } = open(dir);
    store.save({ ...stop('a'), port: 2222 });
    writeFileSync(join(dir, STOPS_FILE), `${readFileSync(join(dir, STOPS_FILE), 'utf8')}${JSON.stringify({ save: { ...stop('b'), port: 70000 } })}\n`);
    const { store: again, problems } = open(dir);
    assert.deepEqual(again.load(), [{ ...stop('a'), port: 2222 }]);
    assert.match(problems[0]!, /:2: damaged record dropped \(bad port\)/);
  });

  it('keeps the firewall a stop was opened on (a collector), and reads stops of older versions without one', () => {
    const dir = tempDir();
    const { store } = open(dir);
    const onFirewall = { ...stop('f'), firewall: '192.0.2.1' };
    store.save(onFirewall);
    store.save(stop('plain'));
    const { store: again, problems } = open(dir);
    assert.deepEqual(problems, []);
    assert.deepEqual(byId(again.load()), [onFirewall, stop('plain')]);
  });

  it('writes one record per change, appended before save/delete return', () => {
    const dir = tempDir();
    const { store } = open(dir);
    const file = join(dir, STOPS_FILE);
    store.save(stop('a'));
    assert.deepEqual(readFileSync(file, 'utf8'), `${JSON.stringify({ save: stop('a') })}\n`);
    store.delete('a');
    assert.deepEqual(readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line)), [{ save: stop('a') }, { delete: 'a' }]);
  });

  it('compacts itself: the file stays about as small as the set of pending stops', () => {
    const dir = tempDir();
    const { store } = open(dir);
    store.save(stop('kept'));
    for (let i = 0; i < 2000; i++) {
      store.save(stop(`s${i}`));
      store.delete(`s${i}`);
    }
    const records = readFileSync(join(dir, STOPS_FILE), 'utf8').split('\n').filter(Boolean).length;
    assert.ok(records <= 300, `${records} records for 1 pending stop`);
    assert.deepEqual(open(dir).store.load(), [stop('kept')]);
  });

  it('rewrites the journal compactly when it opens it', () => {
    const dir = tempDir();
    const { store } = open(dir);
    for (const id of ['a', 'b', 'c']) store.save(stop(id));
    store.delete('b');
    open(dir);
    const lines = readFileSync(join(dir, STOPS_FILE), 'utf8').split('\n').filter(Boolean);
    assert.deepEqual(lines.map((line) => JSON.parse(line).save.id).sort(), ['a', 'c']);
  });

  it('creates its file 0600, and makes an existing one 0600', () => {
    const dir = tempDir();
    open(dir).store.save(stop('a'));
    assert.equal(statSync(join(dir, STOPS_FILE)).mode & 0o777, 0o600);
    chmodSync(join(dir, STOPS_FILE), 0o644);
    open(dir);
    assert.equal(statSync(join(dir, STOPS_FILE)).mode & 0o777, 0o600);
  });

  it('keeps every good record of a damaged file, reports each damaged one by line, and keeps a copy', () => {
    const dir = tempDir();
    const file = join(dir, STOPS_FILE);
    const text = [
      JSON.stringify({ save: stop('a') }),
      '{"save": {"id": "x", "door": "oc"}}',
      '[1, 2]',
      JSON.stringify({ save: { ...stop('y'), due: 'soon' } }),
      JSON.stringify({ save: { ...stop('z'), env: { A: 1 } } }),
      '\u0000\u0000\u0000',
      JSON.stringify({ save: stop('b') }),
      JSON.stringify({ delete: 'a' }),
      JSON.stringify({ save: stop('c') }).slice(0, 40),
    ].join('\n');
    writeFileSync(file, text);
    const { store, problems } = open(dir);
    assert.deepEqual(byId(store.load()), [stop('b')]);
    assert.deepEqual(
      problems.slice(0, -1).map((problem) => problem.replace(`${file}:`, '').replace(/\): .*/s, ')')),
      ['2: damaged record dropped (bad ip)', '3: damaged record dropped (not a record)', '4: damaged record dropped (bad due)', '5: damaged record dropped (bad env)', '6: damaged record dropped (not JSON)', '9: incomplete last record dropped (knocktail stopped while writing it, before it took effect)'],
    );
    assert.match(problems[1]!, /: \[1, 2\]$/, 'the damaged text is quoted');
    assert.match(problems.at(-1)!, /6 damaged record\(s\) dropped, 1 pending stop\(s\) kept; the damaged file is kept as .*\.damaged: if a dropped record was a stop command, run it by hand/);
    assert.equal(readFileSync(`${file}${DAMAGED_SUFFIX}`, 'utf8'), text);
    store.save(stop('d'));
    assert.deepEqual(byId(open(dir).store.load()), [stop('b'), stop('d')], 'appends after the rewrite are whole records');
  });

  it('starts empty beside a journal it cannot read, which it moves aside', () => {
    const dir = tempDir();
    mkdirSync(join(dir, STOPS_FILE));
    const { store, problems } = open(dir);
    assert.deepEqual(store.load(), []);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /cannot read .*pending-stops\.jsonl \(EISDIR.*\): the stop commands it held are lost; it is moved to .*\.damaged: check by hand which doors are still open/);
    assert.ok(existsSync(join(dir, `${STOPS_FILE}${DAMAGED_SUFFIX}`)));
    store.save(stop('a'));
    assert.deepEqual(open(dir).store.load(), [stop('a')]);
  });

  it('fails loudly when the state directory is gone, so that no door opens without its stop recorded', () => {
    const dir = join(tempDir(), 'missing');
    assert.throws(() => open(dir), /cannot write .*missing\/pending-stops\.jsonl: .*ENOENT.*is the state directory there and writable\?/);
  });
});
