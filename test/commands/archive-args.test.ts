/**
 * The FILE… arguments of replay and test-format through the real CLI: every file error names the file and what to
 * do (never a stack trace), `-` and /dev/stdin read standard input (plain or gzip), a file given twice is refused,
 * test-format takes several files, a cut-off .gz is read as far as it goes, --format names are blamed on the
 * command line, and printk uptimes become dates by one rule with a warning when the boot time is a guess.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, linkSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { uptime } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import { canRunAsNobody, cliPath, fixture, replayOutput, runCli, tempDir, type CliResult } from '../helpers.js';

const env = { ...process.env, TZ: 'UTC' };
const CONF = fixture('conf', 'manifest.conf');
const real = (name: string) => fixture('real', name);
const LOG = real('iptables-kernlog-rfc3339.log');

/** The opens of a replay --json output, as `door ip time`. */
function opens(stdout: string): string[] {
  return replayOutput(stdout).events.filter((e) => e.event === 'open').map((e) => `${e.door} ${e.ip} ${e.time}`);
}

/** A scratch directory others may enter (tempDir's is private), for runs as user nobody. */
function openDir(): string {
  const dir = tempDir('knocktail-args-');
  chmodSync(dir, 0o755);
  return dir;
}

/** Runs a shell pipeline (real pipes, unlike a child's stdio from node, which are sockets). */
function shell(script: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', script, 'sh', ...args], { env, timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, signal: null, stdout, stderr });
    });
  });
}

function assertNoStackTrace(result: CliResult): void {
  assert.doesNotMatch(result.stderr, /^\s+at |node:internal|Error:|Unhandled/m, result.stderr);
}

/** The first `bytes` of LOG gzipped: a .gz cut off as a copy taken while it was written would be. */
function truncatedGzip(bytes: number): { gz: Buffer; wholeLines: number } {
  const gz = gzipSync(readFileSync(LOG)).subarray(0, bytes);
  // What zcat recovers from it: the complete lines of that are what must be read.
  const recovered = gunzipSync(gz, { finishFlush: constants.Z_SYNC_FLUSH }).toString('utf8');
  return { gz, wholeLines: recovered.split('\n').length - 1 };
}

describe('replay and test-format: files that cannot be read', () => {
  it('an unreadable file is named, with what to do, by both commands (exit 1, no stack trace)', { skip: canRunAsNobody() }, async () => {
    const dir = openDir();
    const file = join(dir, 'kern.log');
    copyFileSync(LOG, file);
    chmodSync(file, 0o600);
    copyFileSync(CONF, join(dir, 'k.conf'));
    chmodSync(join(dir, 'k.conf'), 0o644);
    const expected = `knocktail: ${file}: permission denied: run knocktail as a user who may read it (e.g. with sudo), or make it readable\n`;
    for (const args of [['test-format', file], ['replay', '-c', join(dir, 'k.conf'), file]]) {
      const result = await runCli(args, { uid: 65534, cwd: '/', env });
      assert.equal(result.code, 1, args[0]);
      assert.equal(result.stderr, expected, args[0]);
      assert.equal(result.stdout, '');
    }
  });

  it('a directory, a device and a missing file are each named with what to do; nothing is read (exit 1)', async () => {
    const dir = tempDir();
    const missing = join(dir, 'kern.log.9');
    const expected = [
      `knocktail: ${dir}: is a directory: give the log files in it (e.g. ${dir}/kern.log*)`,
      'knocktail: /dev/null: is a device, not a log file or capture: save what it holds to a file first (e.g. dmesg > saved.txt)',
      `knocktail: ${missing}: no such file`,
      '',
    ].join('\n');
    for (const args of [['test-format', LOG, dir, '/dev/null', missing], ['replay', '-c', CONF, LOG, dir, '/dev/null', missing]]) {
      const result = await runCli(args, { env });
      assert.equal(result.code, 1, args[0]);
      assert.equal(result.stderr, expected, args[0]);
      assert.equal(result.stdout, '', 'the readable file is not read either: the command line is fixed first');
      assertNoStackTrace(result);
    }
  });
});

describe('standard input', () => {
  it('- reads standard input, plain or gzip, as the file itself would be read (replay)', async () => {
    const dir = tempDir();
    const file = join(dir, 'kern.log');
    copyFileSync(LOG, file);
    const fromFile = await runCli(['replay', '--json', '-c', CONF, file], { env });
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.ok(opens(fromFile.stdout).length >= 8);
    for (const input of [readFileSync(LOG), gzipSync(readFileSync(LOG))]) {
      const result = await runCli(['replay', '--json', '-c', CONF, '-'], { env, input });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(opens(result.stdout), opens(fromFile.stdout));
      const { summary } = replayOutput(result.stdout);
      assert.equal(summary.inputs[0]!.input, '-');
      assert.equal(summary.inputs[0]!.kind, input[0] === 0x1f ? 'gzip' : 'log');
    }
  });

  it('- in test-format, beside a file; its text report names standard input', async () => {
    const result = await runCli(['test-format', '-', real('iptables-kernlog.log')], { env, input: gzipSync(readFileSync(LOG)) });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^standard input: 84 lines, format iptables\n[^]*\n\n.*iptables-kernlog\.log: 84 lines, format iptables\n/);
  });

  it('/dev/stdin from a pipe is read (no seek on the pipe), by both commands', async () => {
    const replayed = await shell('cat "$1" | node "$2" replay --json -c "$3" /dev/stdin', [LOG, cliPath, CONF]);
    assert.equal(replayed.code, 0, replayed.stderr);
    const fromFile = await runCli(['replay', '--json', '-c', CONF, LOG], { env });
    assert.deepEqual(opens(replayed.stdout), opens(fromFile.stdout));
    const tested = await shell('gzip -c "$1" | node "$2" test-format /dev/stdin', [LOG, cliPath]);
    assert.equal(tested.code, 0, tested.stderr);
    assert.match(tested.stdout, /^\/dev\/stdin: 84 lines, format iptables\n/);
  });

  it('/dev/stdin when standard input is a socket (it cannot be opened by name) points to -', async () => {
    const result = await runCli(['test-format', '/dev/stdin'], { env, input: 'x\n' });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^knocktail: \/dev\/stdin: cannot be opened \(ENXIO: no such device or address\): to read standard input, give -\n$/);
  });
});

describe('a file given twice', () => {
  it('under the same name, a hard link, a symbolic link, or - twice: refused as a bad command line (exit 2)', async () => {
    const dir = tempDir();
    const file = join(dir, 'kern.log');
    copyFileSync(LOG, file);
    linkSync(file, join(dir, 'hard.log'));
    symlinkSync(file, join(dir, 'soft.log'));
    const cases: Array<[string[], string]> = [
      [[file, file], `knocktail: ${file} is given twice: give it once\n`],
      [[file, join(dir, 'hard.log')], `knocktail: ${file} and ${join(dir, 'hard.log')} are the same file: give it once\n`],
      [[join(dir, 'soft.log'), file], `knocktail: ${join(dir, 'soft.log')} and ${file} are the same file: give it once\n`],
      [['-', '-'], 'knocktail: standard input is given twice: give it once\n'],
    ];
    for (const [files, message] of cases) {
      for (const command of [['replay', '-c', CONF], ['test-format']]) {
        const result = await runCli([...command, ...files], { env, input: 'x\n' });
        assert.equal(result.code, 2, `${command[0]} ${files.join(' ')}`);
        assert.equal(result.stderr, message);
        assert.equal(result.stdout, '');
      }
    }
  });

  it('one generation of a rotated log twice (kern.log.1 and kern.log.1.gz): replay refuses it (exit 2)', async () => {
    const dir = tempDir();
    copyFileSync(LOG, join(dir, 'kern.log.1'));
    writeFileSync(join(dir, 'kern.log.1.gz'), gzipSync(readFileSync(LOG)));
    const result = await runCli(['replay', '-c', CONF, join(dir, 'kern.log.1'), join(dir, 'kern.log.1.gz')], { env });
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr,
      `knocktail: ${join(dir, 'kern.log.1')} and ${join(dir, 'kern.log.1.gz')} are the same generation of ${join(dir, 'kern.log')} (one is likely a compressed copy of the other): give one of them\n`,
    );
  });
});

describe('test-format with several files', () => {
  it('reports each file; -o json names the file in every record and gives each file its totals', async () => {
    const text = await runCli(['test-format', real('iptables-kernlog.log'), real('ip6tables-kernlog-rfc3339.log')], { env });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /iptables-kernlog\.log: 84 lines, format iptables\n[^]*\n\n\S*ip6tables-kernlog-rfc3339\.log: 35 lines, format iptables\n/);
    const json = await runCli(['test-format', '-o', 'json', real('iptables-kernlog.log'), real('ip6tables-kernlog-rfc3339.log')], { env });
    const records = json.stdout.trim().split('\n').map((line) => JSON.parse(line));
    const totals = records.filter((record) => record.totals !== undefined).map((record) => [record.totals.file, record.totals.matched]);
    assert.deepEqual(totals, [[real('iptables-kernlog.log'), 79], [real('ip6tables-kernlog-rfc3339.log'), 35]]);
    const matched = records.filter((record) => record.result === 'matched');
    assert.equal(matched.filter((record) => record.file === real('iptables-kernlog.log')).length, 79);
    assert.equal(matched.filter((record) => record.file === real('ip6tables-kernlog-rfc3339.log')).length, 35);
  });

  it('a packet capture is named as such: replay reads those (exit 1, the other files still reported)', async () => {
    const result = await runCli(['test-format', real('knocks.pcap'), real('iptables-kernlog.log')], { env });
    assert.equal(result.code, 1);
    assert.equal(result.stderr, `knocktail: ${real('knocks.pcap')}: this is a packet capture (pcap or pcapng), not a log: knocktail replay reads captures\n`);
    assert.match(result.stdout, /iptables-kernlog\.log: 84 lines/);
  });
});

describe('a .gz that ends early', () => {
  it('is read as far as zcat reads it; where it stopped is said; the other files are read; exit 1 at the end', async () => {
    const dir = tempDir();
    const { gz, wholeLines } = truncatedGzip(1500);
    assert.ok(wholeLines > 10 && wholeLines < 84, `${wholeLines} lines before the cut`);
    const cut = join(dir, 'kern.log.gz');
    writeFileSync(cut, gz);
    const stopped = `${cut}: reading stopped after line ${wholeLines}: the compressed data ends early, at byte 1,500 (the file was cut short, e.g. copied while it was written); the cut-off line ${wholeLines + 1} was skipped`;

    const tested = await runCli(['test-format', cut, real('ip6tables-kernlog-rfc3339.log')], { env });
    assert.equal(tested.code, 1);
    assert.equal(tested.stderr, `knocktail: ${stopped}\n`);
    assert.match(tested.stdout, new RegExp(`kern\\.log\\.gz: ${wholeLines} lines \\(reading stopped early, see the error\\), format iptables\\n`));
    assert.match(tested.stdout, /ip6tables-kernlog-rfc3339\.log: 35 lines, format iptables/);

    const replayed = await runCli(['replay', '--json', '-c', CONF, cut, real('ip6tables-kernlog-rfc3339.log')], { env });
    assert.equal(replayed.code, 1);
    assert.equal(replayed.stderr, `knocktail: ${stopped}\n`);
    const { events, summary } = replayOutput(replayed.stdout);
    assert.deepEqual(summary.inputs.map((input) => [input.input, input.lines!.read, input.problem]), [
      [cut, wholeLines, stopped],
      [real('ip6tables-kernlog-rfc3339.log'), 35, null],
    ]);
    assert.equal(summary.complete, false);
    // The knocks before the cut still open doors (A01 is in the first lines), and the IPv6 log is read whole.
    assert.ok(events.some((e) => e.event === 'open' && e.ip === '10.66.0.2'));
    assert.equal(events.filter((e) => e.event === 'open' && e.ip!.includes(':')).length, 5);
  });

  it('damaged compressed data is reported as such (exit 1), the lines before it read', async () => {
    const dir = tempDir();
    // 84 lines 40 times (800 KB of text): zlib drops the last piece it decompresses (256 KB), not the lines before.
    const text = readFileSync(LOG, 'utf8').repeat(40);
    const gz = Buffer.from(gzipSync(text));
    // Flip the stored CRC: every line decompresses, the check at the end fails.
    gz[gz.length - 8]! ^= 0xff;
    const file = join(dir, 'kern.log.1.gz');
    writeFileSync(file, gz);
    const result = await runCli(['test-format', file], { env });
    assert.equal(result.code, 1);
    const stopped = new RegExp(`^knocktail: ${file.replaceAll('.', '\\.')}: reading stopped after line (\\d+): the compressed data is damaged after byte [\\d,]+ \\(zlib: incorrect data check\\)(; the cut-off line \\d+ was skipped)?\\n$`).exec(result.stderr);
    assert.ok(stopped, result.stderr);
    const read = Number(stopped[1]);
    assert.ok(read >= 84 * 40 - (256 * 1024) / 200 && read < 84 * 40, `${read} of ${84 * 40} lines read`);
    assert.match(result.stdout, new RegExp(`kern\\.log\\.1\\.gz: ${read} lines \\(reading stopped early`));
    assertNoStackTrace(result);
  });

  it('a capture cut off in a packet record: the packets before it are replayed, the other files too (exit 1)', async () => {
    const dir = tempDir();
    const capture = readFileSync(real('knocks.pcap'));
    const cut = join(dir, 'cut.pcap');
    writeFileSync(cut, capture.subarray(0, capture.length - 10));
    const result = await runCli(['replay', '--json', '-c', CONF, cut, real('ip6tables-kernlog-rfc3339.log')], { env });
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`^knocktail: ${cut.replaceAll('.', '\\.')}: truncated packet record: .* at byte offset \\d+; the packets before it were read\\n$`));
    const { summary } = replayOutput(result.stdout);
    assert.equal(summary.inputs.find((input) => input.input === cut)!.kind, 'capture');
    assert.ok(summary.inputs.find((input) => input.input === cut)!.capture!.packets > 0);
    assert.equal(summary.inputs.find((input) => input.input !== cut)!.lines!.read, 35);
  });
});

describe('--format names', () => {
  it('an unknown name is blamed on the command line, by both commands, not on the config (exit 1)', async () => {
    const expected = /^the command line \(--format\): unknown log format "nope"\n {2}fix: use one of: [a-z, -]+; or define <logformat nope> … <\/logformat> in the config\n$/;
    for (const args of [['replay', '-c', CONF, '--format', 'iptables,nope', LOG], ['test-format', '-c', CONF, '--format', 'iptables,nope', LOG]]) {
      const result = await runCli(args, { env });
      assert.equal(result.code, 1, args[0]);
      assert.match(result.stderr, expected, args[0]);
      assert.doesNotMatch(result.stderr, /manifest\.conf/);
    }
  });
});

describe('printk uptimes into dates: one rule for replay and test-format', () => {
  const dmesg = real('dmesg.log');
  const guessWarning = (file: string, rest = '') =>
    new RegExp(`^warning: ${file.replaceAll('.', '\\.')}: (\\d+) times since boot turned into dates assuming the machine that wrote them booted when this one did \\((\\S+)\\)${rest}: give --boot-time \\(that machine's "uptime -s", or "journalctl --list-boots"\\)$`, 'm');

  it('without --boot-time both take this machine\'s boot time and say so; the first knock is dated from it', async () => {
    const dir = tempDir();
    const file = join(dir, 'dmesg.log');
    copyFileSync(dmesg, file);
    const bootNow = Date.now() - uptime() * 1000;
    const replayed = await runCli(['replay', '--json', '-c', CONF, '--format', 'dmesg', file], { env });
    const tested = await runCli(['test-format', '-f', 'dmesg', '-o', 'json', file], { env });
    for (const result of [replayed, tested]) {
      assert.equal(result.code, 0, result.stderr);
      const warning = guessWarning(file).exec(result.stderr);
      assert.ok(warning, result.stderr);
      assert.ok(Math.abs(Date.parse(warning[2]!) - bootNow) < 2000, `${warning[2]} is this machine's boot time`);
    }
    const boot = Date.parse(guessWarning(file).exec(replayed.stderr)![2]!);
    // [  446.351538] is the first knock (A01): dated 446.351538 s after the boot time both commands used.
    assert.equal(replayOutput(replayed.stdout).events[0]!.time, new Date(boot + 446_351.538).toISOString());
    const first = tested.stdout.trim().split('\n').map((line) => JSON.parse(line)).find((record) => record.result === 'matched');
    assert.ok(Math.abs(Date.parse(first.hit.time) - (boot + 446_351.538)) < 2000);
  });

  it('a file last written before this machine booted: the warning says its dates are wrong', async () => {
    const dir = tempDir();
    const file = join(dir, 'dmesg.log');
    copyFileSync(dmesg, file);
    utimesSync(file, new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    for (const args of [['replay', '-c', CONF, '--format', 'dmesg', file], ['test-format', '-f', 'dmesg', file]]) {
      const result = await runCli(args, { env });
      assert.match(result.stderr, guessWarning(file, `, but ${file.replaceAll('.', '\\.')} was last written before that, so these dates are wrong`), args[0]);
    }
  });

  it('with --boot-time there is no guess and no warning', async () => {
    const replayed = await runCli(['replay', '--json', '-c', CONF, '--format', 'dmesg', '--boot-time', '2026-11-21T04:08:50.365Z', dmesg], { env });
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.equal(replayed.stderr, '');
    assert.equal(replayOutput(replayed.stdout).events[0]!.time, '2026-11-21T04:16:16.716Z');
    const tested = await runCli(['test-format', '-f', 'dmesg', '--boot-time', '2026-11-21T04:08:50.365Z', dmesg], { env });
    assert.equal(tested.stderr, '');
  });

  it('logs with dates of their own get no warning', async () => {
    const result = await runCli(['replay', '-c', CONF, LOG], { env });
    assert.equal(result.stderr, '');
  });
});
