/** `knocktail test-format` through the real CLI, on the real fixture logs. */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { USAGE } from '../../src/commands/test-format.js';
import { FormatRegistry } from '../../src/formats/registry.js';
import { fixture, replayOutput, runCli, tempDir } from '../helpers.js';

const env = { ...process.env, TZ: 'UTC' };
const real = (...parts: string[]) => fixture('real', ...parts);
const recipes = fixture('formats', 'prefix-recipes.conf');

function testFormat(args: string[]) {
  return runCli(['test-format', ...args], { env });
}

function jsonLines(stdout: string): Array<Record<string, any>> {
  return stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>);
}

/** The number on the `label` row of the text totals. */
function total(stdout: string, label: string): number {
  const row = new RegExp(`^ {2}${label} +(\\d+) {2}`, 'm').exec(stdout);
  assert.ok(row, `no "${label}" row in:\n${stdout}`);
  return Number(row[1]);
}

describe('knocktail test-format', () => {
  it('reports totals and the timestamp form for the default format', async () => {
    const result = await testFormat([real('iptables-kernlog.log')]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /iptables-kernlog\.log: 84 lines, format iptables\n/);
    assert.deepEqual(['matched', 'not a knock', 'missed', 'ignored'].map((label) => total(result.stdout, label)), [79, 0, 0, 5]);
    assert.match(result.stdout, /timestamps: 79 traditional syslog/);
    const rfc = await testFormat([real('iptables-kernlog-rfc3339.log')]);
    assert.match(rfc.stdout, /timestamps: 79 RFC 3339/);
  });

  it('-o json: the fields and the hit of every match, then the totals', async () => {
    const result = await testFormat(['-o', 'json', real('ip6tables-kernlog-rfc3339.log')]);
    assert.equal(result.code, 0, result.stderr);
    const records = jsonLines(result.stdout);
    const matches = records.filter((record) => record.result === 'matched');
    assert.equal(matches.length, 35);
    assert.deepEqual(matches[0], {
      file: real('ip6tables-kernlog-rfc3339.log'),
      line: 1,
      result: 'matched',
      format: 'iptables',
      fields: {
        time: '2026-11-21T04:17:50.427280+00:00',
        interface: 'vfx0',
        ipclient: 'fd66:0000:0000:0000:0000:0000:0000:0002',
        ipserver: 'fd66:0000:0000:0000:0000:0000:0000:0001',
        protocol: 'TCP',
        sport: '57726',
        port: '7000',
        flags: 'SYN ',
      },
      timestamp: 'rfc3339',
      hit: { time: '2026-11-21T04:17:50.427Z', src: 'fd66::2', dst: 'fd66::1', proto: 'tcp', dport: 7000, sport: 57726, flags: 'SYN', iface: 'vfx0' },
    });
    assert.deepEqual(records.at(-1), {
      totals: { file: real('ip6tables-kernlog-rfc3339.log'), formats: { iptables: 35 }, lines: 35, matched: 35, notKnock: 0, missed: 0, ignored: 0, tooLong: 0, timestamps: { rfc3339: 35 }, problem: null },
    });
  });

  it('--block FILE: every block of the file, counted per format; --format picks some', async () => {
    const all = await testFormat(['-b', recipes, real('nftables-log.log')]);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /matched +56 +read as a TCP\/UDP packet \(knock 0, nft-knock 28, nft-knock-all 28\)/);
    const one = await testFormat(['-b', recipes, '-f', 'nft-knock', '-o', 'json', real('nftables-log.log')]);
    const totals = jsonLines(one.stdout).at(-1)!.totals;
    assert.deepEqual([totals.matched, totals.ignored], [28, 29]);
  });

  it('--regex: a one-line format with sub-patterns', async () => {
    const result = await testFormat(['--regex', '{{kernel}}KNOCK {{netfilter}}', real('iptables-kernlog-rfc3339.log')]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /format regex\n/);
    assert.deepEqual([total(result.stdout, 'matched'), total(result.stdout, 'ignored')], [76, 8]);
  });

  it('--print-missed says why a claimed line could not be read; --print-ignored lists the rest', async () => {
    const good = readFileSync(real('iptables-kernlog-rfc3339.log'), 'utf8').split('\n')[2]!;
    const file = join(tempDir(), 'kern.log');
    writeFileSync(file, [good, good.replace('DPT=7000', 'DPT=70000'), 'hello', good.replace('SRC=10.66.0.2', 'SRC=10.66.0.299')].join('\n'));
    const result = await testFormat(['--print-missed', '--print-ignored', file]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^missed {2}line 2 \(iptables: port "70000" is not a number 0-65535\): .*DPT=70000 /m);
    assert.match(result.stdout, /^missed {2}line 4 \(iptables: ipclient "10\.66\.0\.299" is not an IP address\): /m);
    assert.match(result.stdout, /^ignored line 3: hello$/m);
    assert.deepEqual(['matched', 'missed', 'ignored'].map((label) => total(result.stdout, label)), [1, 2, 1]);

    const json = jsonLines((await testFormat(['--print-missed', '-o', 'json', file])).stdout);
    assert.deepEqual(json.filter((record) => record.result === 'missed').map((record) => [record.line, record.reason]), [
      [2, 'port "70000" is not a number 0-65535'],
      [4, 'ipclient "10.66.0.299" is not an IP address'],
    ]);
  });

  it('reads .gz files, and uptime stamps with --boot-time', async () => {
    const file = join(tempDir(), 'kmsg.log.gz');
    writeFileSync(file, gzipSync(readFileSync(real('kmsg.log'))));
    const result = await testFormat(['-f', 'kmsg', '--boot-time', '2026-11-21T04:08:50.365Z', '-o', 'json', file]);
    assert.equal(result.code, 0, result.stderr);
    const records = jsonLines(result.stdout);
    // printk 446.351538 s after that boot time.
    assert.equal(records[0]!.hit.time, '2026-11-21T04:16:16.716Z');
    assert.equal(records[0]!.timestamp, 'uptime');
    assert.deepEqual(records.at(-1)!.totals.timestamps, { uptime: 114 });
  });

  it('splits lines as replay does: CRLF ends a line, a lone CR does not, an over-long line is skipped and counted', async () => {
    const [a, b, c] = readFileSync(real('iptables-kernlog-rfc3339.log'), 'utf8').split('\n').slice(2, 5);
    const file = join(tempDir(), 'mixed.log');
    writeFileSync(file, `${a}\r\n${b}\r${c}\n${'x'.repeat(70_000)}\n${c}\n`);
    const result = await testFormat(['--print-ignored', file]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /mixed\.log: 4 lines/);
    assert.deepEqual(['matched', 'ignored', 'too long'].map((label) => total(result.stdout, label)), [2, 1, 1]);
    assert.match(result.stdout, /^ignored line 2: /m);
    assert.match(result.stderr, /mixed\.log: line 3 is longer than 65536 bytes; skipped/);
    const replayed = await runCli(['replay', '--json', '-c', fixture('conf', 'manifest.conf'), file], { env });
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.match(replayed.stderr, /line 3 is longer than 65536 bytes; skipped/);
    const { summary } = replayOutput(replayed.stdout);
    assert.deepEqual(summary.inputs[0]!.lines, { read: 4, packets: 2, skipped: 0, ignored: 1, otherProtocols: 0, malformed: 0, tooLong: 1 });
  });

  it('-c CONF: the config\'s blocks and, without --format, its LogFormat', async () => {
    const dir = tempDir();
    const conf = join(dir, 'knocktail.conf');
    writeFileSync(conf, ['[options]', '  LogFormat = mine, iptables', '<logformat mine>', '  required = {{kernel}}FW-IN {{netfilter}}', '</logformat>', '[door]', '  sequence = 7000'].join('\n'));
    const result = await testFormat(['-c', conf, real('iptables-kernlog.log')]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /formats mine, iptables\n/);
    assert.match(result.stdout, /\(mine 3, iptables 76\)/);
  });

  it('a format without a time field says the arrival time is used', async () => {
    const result = await testFormat(['-b', fixture('formats', 'perl-style.conf'), '-f', 'perl-style', real('iptables-kernlog-rfc3339.log')]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(total(result.stdout, 'matched'), 76);
    assert.match(result.stdout, /timestamps: 76 RFC 3339/);
    const dir = tempDir();
    const noTime = join(dir, 'no-time.conf');
    writeFileSync(noTime, readFileSync(fixture('formats', 'perl-style.conf'), 'utf8').replace(/^ *time = .*$/m, ''));
    const untimed = await testFormat(['-b', noTime, real('iptables-kernlog.log')]);
    assert.match(untimed.stdout, /timestamps: the format has no time field; the daemon uses the time it reads each line/);
  });

  describe('-f auto: which format is this file in', () => {
    const routers = (...parts: string[]) => fixture('formats', 'routers', ...parts);
    const cases: Array<[file: string, suggested: string, also: string[]]> = [
      [routers('filterlog.log'), 'filterlog', []],
      [routers('mikrotik.log'), 'mikrotik', []],
      [routers('kernel', 'logread.log'), 'openwrt', []],
      [routers('kernel', 'vyos.log'), 'vyos', ['iptables']],
      [routers('kernel', 'firewalld.log'), 'firewalld', ['iptables']],
      [routers('kernel', 'kern-rfc3339.log'), 'iptables', ['vyos', 'firewalld']],
      [real('ufw.log'), 'ufw', ['iptables']],
      [real('iptables-kernlog.log'), 'iptables', []],
      [real('dmesg-iso.log'), 'dmesg-iso', []],
      [real('ulogd-logemu.log'), 'ulogd', []],
      [real('kmsg.log'), 'kmsg', []],
      [real('dmesg-raw.log'), 'dmesg-raw', []],
      [real('dmesg.log'), 'dmesg', []],
    ];
    for (const [file, suggested, also] of cases) {
      it(`recognises ${file.split('/').slice(-2).join('/')} as ${suggested}`, async () => {
        const result = await testFormat(['-f', 'auto', '-o', 'json', file]);
        assert.equal(result.code, 0, result.stderr);
        const { detect } = jsonLines(result.stdout).at(-1)!;
        assert.equal(detect.suggested, suggested);
        assert.deepEqual(detect.formats.map((r: { format: string }) => r.format), [suggested, ...also]);
        // The suggested format reads the file as well on its own as in the detection.
        const alone = jsonLines((await testFormat(['-f', suggested, '-o', 'json', file])).stdout).at(-1)!.totals;
        assert.equal(detect.formats[0].matched, alone.matched);
        assert.equal(detect.lines, alone.lines);
      });
    }

    it('text output lists each format\'s lines, the unread ones on request, and the LogFormat to use', async () => {
      const file = routers('mikrotik.log');
      const result = await testFormat(['-f', 'auto', '--print-ignored', file]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(
        result.stdout,
        [
          'ignored line 4: 2023-03-19T12:34:09.757188+01:00 10.120.127.1 system,error,critical login failure for user admin from 10.127.0.35 via winbox',
          `${file}: 9 lines; formats that read them, best first:`,
          '  mikrotik  8 knock lines (TCP/UDP), 0 of another protocol, 0 missed',
          '  unread  1 line no format claims',
          `suggested: LogFormat = mikrotik   (then: knocktail test-format -f mikrotik ${file})`,
          '',
        ].join('\n'),
      );
    });

    it('the config\'s and -b blocks take part; a file no format reads says so', async () => {
      const withRecipes = jsonLines((await testFormat(['-f', 'auto', '-b', recipes, '-o', 'json', real('nftables-log.log')])).stdout).at(-1)!.detect;
      assert.deepEqual(withRecipes.formats.map((r: { format: string; matched: number }) => [r.format, r.matched]), [['iptables', 57], ['nft-knock', 28], ['nft-knock-all', 28]]);
      const file = join(tempDir(), 'other.log');
      writeFileSync(file, 'hello\nworld\n');
      const none = await testFormat(['-f', 'auto', file]);
      assert.equal(none.code, 0, none.stderr);
      assert.match(none.stdout, /other\.log: 2 lines; no known format reads any of them\n {2}unread {2}2 lines no format claims \(--print-ignored shows them\)\nno format reads a knock here/);
    });

    it('without -f, when the default format reads nothing, test-format points to -f auto', async () => {
      const file = routers('filterlog.log');
      const result = await testFormat([file]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`no line is in the default format iptables: knocktail test-format -f auto ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} tells which format reads this file`));
      const named = await testFormat(['-f', 'iptables', file]);
      assert.doesNotMatch(named.stdout, /-f auto/, 'not when the format was chosen');
    });
  });

  describe('errors', () => {
    it('an unknown format lists the known ones (exit 1)', async () => {
      const result = await testFormat(['-f', 'nope', real('forged.log')]);
      assert.equal(result.code, 1);
      // Blamed on the command line, where the name came from, as replay does.
      assert.equal(
        result.stderr,
        `the command line (--format): unknown log format "nope"\n  fix: use one of: ${FormatRegistry.load(null).names().join(', ')}; or define <logformat nope> … </logformat> in the config\n`,
      );
    });

    it('a broken block is reported with file:line and a fix (exit 1)', async () => {
      const broken = fixture('formats', 'broken.conf');
      const result = await testFormat(['-b', broken, real('forged.log')]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`^${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: logformat broken: required is not a valid regex: .*\n  fix: `));
      assert.doesNotMatch(result.stderr, /no ipclient field/, 'no follow-up noise for a regex that did not compile');
    });

    it('a --regex without the mandatory fields says which (exit 1)', async () => {
      const result = await testFormat(['--regex', 'SRC=(?<ipclient>\\S+) DPT=(?<port>\\d+)', real('forged.log')]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^--regex:1: logformat regex: no ipserver field\n {2}fix: .*\n--regex:1: logformat regex: no protocol field\n/);
    });

    it('a missing file (exit 1)', async () => {
      const missing = join(tempDir(), 'missing.log');
      const result = await testFormat([missing]);
      assert.equal(result.code, 1);
      assert.equal(result.stderr, `knocktail: ${missing}: no such file\n`);
    });

    it('bad command lines (exit 2, saying what is wrong)', async () => {
      const cases: Array<[string[], RegExp]> = [
        [[], /test-format needs a log file \(or - for standard input\)/],
        [['-o', 'xml', 'a'], /--output must be text or json, not "xml"/],
        [['--regex', 'x', '-f', 'iptables', 'a'], /--regex is a format of its own/],
        [['--boot-time', 'yesterday', 'a'], /--boot-time "yesterday" is not a date/],
        [['--nope', 'a'], /Unknown option '--nope'[^]*usage: knocktail test-format/],
      ];
      for (const [args, message] of cases) {
        const result = await testFormat(args);
        assert.equal(result.code, 2, args.join(' '));
        assert.match(result.stderr, message, args.join(' '));
      }
    });
  });

  it('--help tells the truth: every option it lists is accepted, and it names exactly the shipped formats', async () => {
    const help = await testFormat(['--help']);
    assert.equal(help.code, 0);
    assert.equal(help.stdout, `${USAGE}\n`);
    const options = [...new Set(USAGE.match(/--[a-z-]+/g))];
    assert.ok(options.length >= 9);
    for (const option of options) {
      const value = { '--format': 'iptables', '--output': 'json', '--boot-time': '2026-11-21T00:00:00Z', '--config': fixture('conf', 'knocktail.conf'), '--block': recipes, '--regex': '{{kernel}}{{anyprefix}}{{netfilter}}' }[option];
      const args = option === '--help' ? [option] : [option, ...(value === undefined ? [] : [value]), real('forged.log')];
      const result = await testFormat(args);
      assert.notEqual(result.code, 2, `${option}: ${result.stderr}`);
    }
    const listed = /Shipped:\s+([^;]+);/.exec(USAGE)![1]!.split(',').map((name) => name.trim()).sort();
    assert.deepEqual(listed, FormatRegistry.load(null).names());
  });
});
