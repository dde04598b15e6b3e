/**
 * The journal reader against the real journalctl, reading a journal file of our own that systemd-journal-remote
 * writes from the export format (the host's journal is never touched).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FormatRegistry } from '../../src/formats/registry.js';
import type { KnockHit } from '../../src/hit.js';
import { JournalInput, JournalReader, type JournalReaderOptions, type KernelJournalEntry } from '../../src/inputs/journal.js';
import { fixture, which } from '../helpers.js';
import { freshDirectory, stopAfterTests, waitFor } from './follower-harness.js';

const journalRemote = ['/lib/systemd/systemd-journal-remote', '/usr/lib/systemd/systemd-journal-remote'].find((path) => existsSync(path)) ?? null;
const needsJournalTools = which('journalctl') === null
  ? 'needs journalctl (systemd)'
  : journalRemote === null
    ? 'needs systemd-journal-remote (apt-get install systemd-journal-remote; installed by .ci/run)'
    : false;

/** The real entries of phase G: G05 forged through the syslog socket, G07 a real kernel line, G08 root's /dev/kmsg injection. */
const forgedFixture = readFileSync(fixture('real', 'forged', 'journal.json'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, string>);
const bootId = forgedFixture[0]!._BOOT_ID!;

/** A journal file fed through a long-running systemd-journal-remote (export format on its stdin). */
class TestJournal {
  readonly directory = join(freshDirectory(), 'journal');
  private readonly writer: ChildProcess;
  /** µs; stamped from the clock as journald does (a resume after no entry at all uses --since=now). */
  private realtime = 0;
  private monotonic = 1_000_000;

  constructor() {
    mkdirSync(this.directory);
    this.writer = spawn(journalRemote!, [`--output=${join(this.directory, 'system.journal')}`, '-'], { stdio: ['pipe', 'ignore', 'ignore'] });
    // journalctl -k needs an entry of the boot it shows (the last one in the journal) before it can start.
    this.kernel('boot');
  }

  /** Waits until the first entry is in the journal file. */
  async ready(): Promise<void> {
    const hasEntries = () => spawnSync('journalctl', [`--directory=${this.directory}`, '--dmesg', '--lines=1', '--quiet', '--output=cat'], { encoding: 'utf8' }).stdout.includes('boot');
    await waitFor(hasEntries, 'the journal file');
  }

  /** Appends one entry (a Buffer value in the binary form); returns its __REALTIME_TIMESTAMP. */
  append(fields: Record<string, string | Buffer>): number {
    this.realtime = Math.max(this.realtime + 1, Date.now() * 1000);
    const parts: Buffer[] = [Buffer.from(`__REALTIME_TIMESTAMP=${this.realtime}\n__MONOTONIC_TIMESTAMP=${this.monotonic++}\n_BOOT_ID=${bootId}\n`)];
    for (const [name, value] of Object.entries(fields)) {
      if (typeof value === 'string') {
        parts.push(Buffer.from(`${name}=${value}\n`));
      } else {
        const length = Buffer.alloc(8);
        length.writeBigUInt64LE(BigInt(value.length));
        parts.push(Buffer.from(`${name}\n`), length, value, Buffer.from('\n'));
      }
    }
    parts.push(Buffer.from('\n'));
    this.writer.stdin!.write(Buffer.concat(parts));
    return this.realtime;
  }

  kernel(message: string): void {
    this.append({ _TRANSPORT: 'kernel', SYSLOG_FACILITY: '0', PRIORITY: '4', MESSAGE: message });
  }

  async close(): Promise<void> {
    this.writer.stdin!.end();
    await once(this.writer, 'close');
  }
}

interface Reading {
  reader: JournalReader;
  entries: KernelJournalEntry[];
  warnings: string[];
  messages(): string[];
}

function reading(journal: TestJournal, options: Partial<JournalReaderOptions> = {}): Reading {
  const entries: KernelJournalEntry[] = [];
  const warnings: string[] = [];
  const reader = stopAfterTests(new JournalReader({
    cursorFile: null,
    fromEnd: false,
    onEntry: (entry) => entries.push(entry),
    onWarning: (message) => warnings.push(message),
    journalctlArgs: [`--directory=${journal.directory}`],
    ...options,
  }));
  return { reader, entries, warnings, messages: () => entries.map((entry) => entry.message).filter((message) => !message.startsWith('ready ')) };
}

/** Without a cursor journalctl begins at the journal's end when it gets there: append markers until one comes through. */
async function untilFollowing(journal: TestJournal, read: Reading): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    journal.kernel(`ready ${attempt}`);
    try {
      await waitFor(() => read.entries.some((entry) => entry.message.startsWith('ready ')), 'a marker', 300);
      return;
    } catch {
      // journalctl was not there yet: try another marker
    }
  }
  throw new Error(`journalctl never delivered a marker entry (status ${JSON.stringify(read.reader.status())}, warnings: ${read.warnings.join(' | ')})`);
}

const journals: TestJournal[] = [];
async function newJournal(): Promise<TestJournal> {
  const journal = new TestJournal();
  journals.push(journal);
  await journal.ready();
  return journal;
}
after(async () => {
  for (const journal of journals) await journal.close();
});

describe('JournalReader', { skip: needsJournalTools }, () => {
  test('passes kernel entries on and rejects the forged ones (syslog transport, and /dev/kmsg with facility 1)', async () => {
    const journal = await newJournal();
    const read = reading(journal);
    await read.reader.start();
    try {
      await untilFollowing(journal, read);
      const rejectedBefore = read.reader.status().rejected;
      const stamps = forgedFixture.map(({ __CURSOR, __REALTIME_TIMESTAMP, __MONOTONIC_TIMESTAMP, _BOOT_ID, ...fields }) => journal.append(fields));
      journal.append({ _TRANSPORT: 'kernel', MESSAGE: Buffer.from([0x6b, 0x6e, 0x6f, 0x63, 0x6b, 0x20, 0xff, 0x0a, 0x21]) }); // no facility, not UTF-8
      journal.append({ _TRANSPORT: 'kernel', SYSLOG_FACILITY: '3', MESSAGE: 'daemon facility through kmsg' });
      journal.append({ _TRANSPORT: 'stdout', MESSAGE: 'KNOCK SRC=6.6.6.6 from a service' });
      journal.kernel('end');
      await waitFor(() => read.messages().includes('end'), 'the end marker');
      const realIndex = forgedFixture.findIndex((entry) => entry.SYSLOG_FACILITY === '0');
      const real = forgedFixture[realIndex]!;
      assert.deepEqual(read.messages(), [real.MESSAGE, 'knock \uFFFD\n!', 'end']);
      const delivered = read.entries.find((entry) => entry.message === real.MESSAGE)!;
      assert.equal(delivered.time, Math.floor(stamps[realIndex]! / 1000));
      assert.match(delivered.cursor, /^s=[0-9a-f]+;i=[0-9a-f]+;/);
      // journalctl -k already hides the syslog and stdout ones; the two non-kernel facilities reach us and are refused.
      assert.equal(read.reader.status().rejected - rejectedBefore, 2);
      assert.deepEqual(read.warnings, []);
    } finally {
      await read.reader.stop();
    }
  });

  test('journald\'s own "Missed N kernel messages" entries are counted as lost, and only journald can write them', async () => {
    const journal = await newJournal();
    const read = reading(journal);
    await read.reader.start();
    try {
      await untilFollowing(journal, read);
      const missed = 'e9bf28e6e834481bb6f48f548ad13606';
      // As journald writes them (journald-kmsg.c: server_driver_message with SD_MESSAGE_JOURNAL_MISSED).
      journal.append({ _TRANSPORT: 'driver', MESSAGE_ID: missed, PRIORITY: '6', SYSLOG_IDENTIFIER: 'systemd-journald', MESSAGE: 'Missed 1234 kernel messages' });
      journal.append({ _TRANSPORT: 'driver', MESSAGE_ID: missed, PRIORITY: '6', SYSLOG_IDENTIFIER: 'systemd-journald', MESSAGE: 'Missed 6 kernel messages' });
      // The same text from anyone else (a service, logger) is no report of journald's.
      journal.append({ _TRANSPORT: 'stdout', MESSAGE_ID: missed, MESSAGE: 'Missed 999999 kernel messages' });
      journal.append({ _TRANSPORT: 'syslog', MESSAGE: 'Missed 999999 kernel messages' });
      journal.kernel('end');
      await waitFor(() => read.messages().includes('end'), 'the end marker');
      assert.equal(read.reader.status().missed, 1240);
      assert.deepEqual(read.messages(), ['end'], 'the reports are not kernel lines');
    } finally {
      await read.reader.stop();
    }
  });

  test('persists the cursor; a restart resumes right after it, also with entries written while stopped; fromEnd skips them', async () => {
    const journal = await newJournal();
    const cursorFile = join(freshDirectory(), 'journal.cursor');
    const first = reading(journal, { cursorFile });
    await first.reader.start();
    await untilFollowing(journal, first);
    journal.kernel('k1');
    journal.kernel('k2');
    await waitFor(() => first.messages().length === 2, 'k1 and k2');
    await first.reader.stop();
    assert.equal(JSON.parse(readFileSync(cursorFile, 'utf8')).cursor, first.entries.at(-1)!.cursor);

    journal.kernel('k3 (written while stopped)');
    journal.kernel('k4 (written while stopped)');
    const second = reading(journal, { cursorFile });
    await second.reader.start();
    try {
      journal.kernel('k5');
      await waitFor(() => second.entries.length === 3, 'k3, k4, k5');
      assert.deepEqual(second.messages(), ['k3 (written while stopped)', 'k4 (written while stopped)', 'k5']);
      assert.equal(second.entries.length, 3); // nothing before the cursor came again
    } finally {
      await second.reader.stop();
    }

    journal.kernel('k6 (written while stopped)');
    const third = reading(journal, { cursorFile, fromEnd: true });
    await third.reader.start();
    try {
      await untilFollowing(journal, third);
      journal.kernel('k7');
      await waitFor(() => third.messages().includes('k7'), 'k7');
      assert.deepEqual(third.messages(), ['k7']);
    } finally {
      await third.reader.stop();
    }
  });

  test('journalctl killed: it is restarted after the last entry read, nothing lost or repeated, and the exit is reported', async () => {
    const journal = await newJournal();
    const read = reading(journal, { restartDelayMs: 50 });
    await read.reader.start();
    try {
      await untilFollowing(journal, read);
      for (const message of ['m1', 'm2', 'm3']) journal.kernel(message);
      await waitFor(() => read.messages().length === 3, 'm1..m3');
      const pid = read.reader.status().pid!;
      process.kill(pid, 'SIGKILL'); // the journalctl this reader started
      for (const message of ['m4', 'm5', 'm6']) journal.kernel(message);
      await waitFor(() => read.messages().length === 6, 'm4..m6');
      assert.deepEqual(read.messages(), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
      const status = read.reader.status();
      assert.equal(status.restarts, 1);
      assert.notEqual(status.pid, pid);
      assert.equal(read.warnings.length, 1);
      assert.match(read.warnings[0]!, /^journalctl exited \(killed by SIGKILL\); restarting it in 0\.05 s/);
    } finally {
      await read.reader.stop();
    }
  });

  test('a cursor journalctl rejects is reported and dropped; reading goes on', async () => {
    const journal = await newJournal();
    const cursorFile = join(freshDirectory(), 'journal.cursor');
    writeFileSync(cursorFile, JSON.stringify({ version: 1, cursor: 'not-a-cursor' }));
    const read = reading(journal, { cursorFile, restartDelayMs: 10 });
    await read.reader.start();
    try {
      await waitFor(() => read.warnings.some((message) => message.includes('rejected the cursor not-a-cursor')), 'the rejection');
      journal.kernel('after the bad cursor');
      await waitFor(() => read.messages().includes('after the bad cursor'), 'the new entry');
    } finally {
      await read.reader.stop();
    }
  });
});

describe('JournalReader without a usable journalctl', () => {
  test('start() rejects with a clear message when journalctl cannot be run', async () => {
    const reader = new JournalReader({ cursorFile: null, fromEnd: false, onEntry: () => {}, onWarning: () => {}, journalctl: '/nonexistent/journalctl' });
    await assert.rejects(reader.start(), /cannot run \/nonexistent\/journalctl: .*ENOENT.*is systemd's journalctl installed/);
  });

  test('a journalctl that keeps exiting is restarted with a doubling delay, up to the maximum', async () => {
    const warnings: string[] = [];
    const reader = stopAfterTests(new JournalReader({
      cursorFile: null, fromEnd: false, onEntry: () => {}, onWarning: (message) => warnings.push(message),
      journalctl: which('false')!, restartDelayMs: 10, maxRestartDelayMs: 40,
    }));
    await reader.start();
    try {
      await waitFor(() => warnings.length >= 4, 'four restarts');
    } finally {
      await reader.stop();
    }
    assert.deepEqual(warnings.slice(0, 4).map((message) => /restarting it in ([\d.]+) s/.exec(message)?.[1]), ['0.01', '0.02', '0.04', '0.04']);
    assert.match(warnings[0]!, /^journalctl exited \(exit status 1\)/);
  });
});

describe('JournalInput', { skip: needsJournalTools }, () => {
  test('kernel entries become hits through the line formats; forged entries never do', async () => {
    const journal = await newJournal();
    const hits: KnockHit[] = [];
    const warnings: string[] = [];
    const input = stopAfterTests(new JournalInput({
      formats: [FormatRegistry.load(null).get('iptables')],
      watch: null,
      cursorDir: null,
      fromEnd: false,
      onWarning: (message) => warnings.push(message),
      journalctlArgs: [`--directory=${journal.directory}`],
    }));
    await input.start((hit) => hits.push(hit));
    try {
      // Until journalctl follows (see untilFollowing), markers are appended; they are kernel entries but no knocks.
      for (let attempt = 0; input.status().entries === 0; attempt++) {
        if (attempt === 100) throw new Error(`journalctl never delivered a marker (${warnings.join(' | ')})`);
        journal.kernel(`ready ${attempt}`);
        await new Promise((done) => setTimeout(done, 300));
      }
      // Phase A's knocks A01 (3 × TCP) and A02 (3 × UDP) as journald stored them: messages without a printk stamp.
      const [a01, a02] = [[2, 5], [5, 8]].map(([from, to]) =>
        readFileSync(fixture('real', 'journalctl-k-short-iso-precise.log'), 'utf8').split('\n').slice(from, to).map((line) => line.slice(line.indexOf(' kernel: ') + 9)));
      const kernelEntry = (message: string) => journal.append({ _TRANSPORT: 'kernel', SYSLOG_FACILITY: '0', PRIORITY: '4', MESSAGE: message });
      const a01Stamps = a01!.map(kernelEntry);
      // Phase G: G05 (syslog socket), G07 (real), G08 (root's /dev/kmsg injection, facility 1), in their order.
      for (const { __CURSOR, __REALTIME_TIMESTAMP, __MONOTONIC_TIMESTAMP, _BOOT_ID, ...fields } of forgedFixture) journal.append(fields);
      // Entries arrive in order: once A02's last knock is here, G08 has been judged.
      a02!.forEach(kernelEntry);
      await waitFor(() => hits.length >= 7, 'the A01, G07 and A02 hits');
      assert.deepEqual(hits.map((hit) => `${hit.src}>${hit.dst} ${hit.proto}/${hit.dport} flags=${hit.flags} ${hit.iface} ${hit.input}`), [
        ...[7000, 8000, 9000].map((port) => `10.66.0.2>10.66.0.1 tcp/${port} flags=2 vfx0 journal`),
        '10.66.0.2>10.66.0.1 tcp/7000 flags=2 vfx0 journal',
        ...[7000, 8000, 9000].map((port) => `10.66.0.2>10.66.0.1 udp/${port} flags=0 vfx0 journal`),
      ]);
      // Event time is the journal's own stamp (µs cut to ms), not the time the entry was read.
      assert.deepEqual(hits.slice(0, 3).map((hit) => hit.time), a01Stamps.map((stamp) => Math.floor(stamp / 1000)));
      const status = input.status();
      assert.equal(status.kind, 'journal');
      assert.equal((status.decoder as { matched: number }).matched, 7);
      assert.equal(status.rejected, 1, 'G08: kernel transport, user facility');
      assert.deepEqual(warnings, []);
    } finally {
      await input.stop();
    }
  });
});
