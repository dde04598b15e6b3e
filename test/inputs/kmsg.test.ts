/**
 * The /dev/kmsg input: record parsing on the real records of fixtures/real/kmsg.log, and the reader on the real
 * /dev/kmsg (root), where test/inputs/kmsg-fill.py writes records (facility user, so never knocks) until the
 * kernel's ring buffer has been overwritten: once while the reader is stopped (a restart from its saved position
 * counts the gap) and once while it runs but cannot read (the event loop blocked: the next read fails with
 * EPIPE). Every record number is accounted for: read, refused, or counted as lost.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { KmsgReader, parseKmsgRecord, type KmsgRecord } from '../../src/inputs/kmsg.js';
import { fixture, needs, repoRoot, tempDir } from '../helpers.js';
import { waitFor } from './follower-harness.js';

const FILL = join(repoRoot, 'test', 'inputs', 'kmsg-fill.py');
const skip = needs({ root: true, tools: ['python3'] });

describe('kmsg records', () => {
  test('the real records of kmsg.log: priority, number, time and message; continuation lines dropped', () => {
    const lines = readFileSync(fixture('real', 'kmsg.log'), 'latin1').split('\n').filter((line) => line !== '' && !line.startsWith(' '));
    const records = lines.map((line) => parseKmsgRecord(`${line}\n`));
    assert.ok(records.every((record) => record !== null));
    const knock = records.find((record) => record!.seq === 347)!;
    assert.deepEqual({ ...knock, message: knock.message.slice(0, 15) }, { facility: 0, level: 4, seq: 347, micros: 446351538, message: 'KNOCK IN=vfx0 O' });
    assert.deepEqual(parseKmsgRecord('12,9,100,-,caller=T1;forged by a user\n SUBSYSTEM=x\n'), { facility: 1, level: 4, seq: 9, micros: 100, message: 'forged by a user' });
    for (const bad of ['', 'no header', '4,347;short', 'x,1,2,-;bad priority', '4,-1,2,-;negative']) assert.equal(parseKmsgRecord(bad), null, bad);
  });

  test('start fails with the fix when the device cannot be opened', () => {
    const reader = new KmsgReader({ device: join(tempDir(), 'missing'), cursorFile: null, fromEnd: true, onRecord: () => undefined, onWarning: () => undefined });
    assert.throws(() => reader.start(), /cannot open .*missing.*ENOENT[\s\S]*fix: /);
  });
});

interface Reading {
  reader: KmsgReader;
  records: KmsgRecord[];
  warnings: string[];
}

function reading(cursorFile: string, fromEnd: boolean): Reading {
  const records: KmsgRecord[] = [];
  const warnings: string[] = [];
  const reader = new KmsgReader({ cursorFile, fromEnd, onRecord: (record) => records.push(record), onWarning: (message) => warnings.push(message) });
  return { reader, records, warnings };
}

/** Writes records until the ring was overwritten `rounds` times; synchronous, so this process reads nothing meanwhile. */
function fill(tag: string, rounds: number): { count: number; lastSeq: number } {
  const result = spawnSync('python3', [FILL, tag, String(rounds)], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  const [count, lastSeq] = result.stdout.trim().split(' ').map(Number) as [number, number];
  return { count, lastSeq };
}

/** Waits until the reader has read (or counted as lost) every record up to `seq`. */
async function readThrough(reader: KmsgReader, seq: number): Promise<void> {
  await waitFor(() => (reader.status().seq ?? -1) >= seq, `record ${seq} read`);
}

describe('KmsgReader on the real /dev/kmsg', { skip }, () => {
  const tag = `knocktail-test-${process.pid}`;

  test('records from user space are refused, and every record number is read, refused or counted as lost', async () => {
    const { reader } = reading(join(tempDir(), 'kmsg.json'), true);
    reader.start();
    try {
      const start = reader.status();
      await readThrough(reader, fill(tag, 0).lastSeq); // 100 records: far from filling the ring
      const now = reader.status();
      assert.ok(now.rejected - start.rejected >= 100, `${now.rejected - start.rejected} refused`);
      assert.equal(now.seq! - start.seq!, now.records - start.records + (now.rejected - start.rejected) + (now.lost - start.lost));
    } finally {
      reader.stop();
    }
  });

  test('a restart from the saved position counts what the ring overwrote meanwhile', async () => {
    const cursor = join(tempDir(), 'kmsg.json');
    const first = reading(cursor, true);
    first.reader.start(); // reads the ring to its end, synchronously
    first.reader.stop();
    const saved = (JSON.parse(readFileSync(cursor, 'utf8')) as { seq: number }).seq;
    assert.equal(saved, first.reader.status().seq);
    const { lastSeq } = fill(tag, 2);
    const second = reading(cursor, false);
    second.reader.start();
    try {
      await readThrough(second.reader, lastSeq);
      const status = second.reader.status();
      assert.ok(status.lost > 0, 'the ring was overwritten while no one read');
      assert.equal(status.seq! - saved, status.records + status.rejected + status.lost, JSON.stringify(status));
      assert.deepEqual(second.warnings, []);
    } finally {
      second.reader.stop();
    }
  });

  test('a reader that cannot keep up: the read fails with EPIPE, and the overwritten records are counted', async () => {
    const { reader } = reading(join(tempDir(), 'kmsg.json'), true);
    reader.start();
    try {
      const start = reader.status();
      // The event loop is blocked meanwhile: the reader's next record is overwritten.
      await readThrough(reader, fill(tag, 2).lastSeq);
      const now = reader.status();
      assert.ok(now.overruns > start.overruns, 'EPIPE was seen');
      assert.ok(now.lost > start.lost);
      assert.equal(now.seq! - start.seq!, now.records - start.records + (now.rejected - start.rejected) + (now.lost - start.lost));
    } finally {
      reader.stop();
    }
  });
});

