import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { LogFormatBlock, LogField } from '../../src/config/types.js';
import { ConfigError } from '../../src/config/types.js';
import { CompiledFormat, Outcome } from '../../src/formats/logformat.js';
import { FormatRegistry, LineDecoder } from '../../src/formats/registry.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, TCP_URG } from '../../src/hit.js';
import { fixture, timeZoneForEachTest } from '../helpers.js';
import { hitOf, portWatch } from './support.js';

// The fixtures were logged on a UTC machine; their traditional stamps are local time.
timeZoneForEachTest('UTC');

function block(name: string, fields: Partial<Record<LogField, string>>): LogFormatBlock {
  const entries = Object.entries(fields).map(([key, pattern], i) => [key, { pattern, at: { file: 'test.conf', line: i + 2 } }]);
  return { name, at: { file: 'test.conf', line: 1 }, fields: Object.fromEntries(entries) };
}

const ctx = { input: 'test', reference: Date.parse('2026-11-21T12:00:00Z'), bootTime: 0, fallbackTime: 42, arrival: null };

function lines(file: string): string[] {
  return readFileSync(fixture('real', file), 'utf8').split('\n').filter((l) => l !== '');
}

describe('shipped iptables format', () => {
  const iptables = FormatRegistry.load(null).get('iptables');

  for (const file of ['iptables-kernlog.log', 'iptables-kernlog-rfc3339.log']) {
    it(`decodes every packet line of ${file} and nothing else`, () => {
      const decoder = new LineDecoder([iptables]);
      const hits = lines(file).map((line) => hitOf(decoder.decode(line, ctx))).filter((hit) => hit !== null);
      // MANIFEST: 76 KNOCK lines + FW-IN 22/tcp, 80/tcp, 53/udp; the ICMP line and 4 promiscuous-mode lines are not its lines.
      assert.equal(hits.length, 79);
      assert.deepEqual(decoder.counters, { lines: 84, matched: 79, ignored: 5, notKnock: 0, missed: 0, skipped: 0 });
      const first = hits[0]!;
      assert.deepEqual({ ...first, time: 0 }, { time: 0, src: '10.66.0.2', dst: '10.66.0.1', proto: 'tcp', dport: 7000, sport: 39206, flags: TCP_SYN, input: 'test', iface: 'vfx0' });
      assert.equal(new Date(first.time).toISOString().slice(0, 19), '2026-11-21T04:16:16');
      assert.equal(hits.filter((h) => h.iface === 'lo').length, 9);
      assert.equal(hits.filter((h) => h.proto === 'udp').length, lines(file).filter((l) => l.includes(' PROTO=UDP ')).length);
    });
  }

  it('reads the kernel flag words exactly', () => {
    const decoder = new LineDecoder([iptables]);
    const flagsByPort7000 = lines('iptables-kernlog.log')
      .map((line) => hitOf(decoder.decode(line, ctx)))
      .filter((h) => h !== null && h.dport === 7000 && h.proto === 'tcp' && h.sport! < 5000)
      .map((h) => h!.flags);
    // hping3 phases A12–A20: FIN, ACK, SYN+ACK, RST, PSH, URG, URG+PSH+FIN, none, SYN.
    assert.deepEqual(flagsByPort7000, [TCP_FIN, TCP_ACK, TCP_SYN | TCP_ACK, 0x04, TCP_PSH, TCP_URG, TCP_URG | TCP_PSH | TCP_FIN, 0, TCP_SYN]);
  });

  it('canonicalises the fully expanded IPv6 addresses the kernel logs', () => {
    const decoder = new LineDecoder([iptables]);
    const hits = lines('ip6tables-kernlog-rfc3339.log').map((line) => hitOf(decoder.decode(line, ctx))).filter((h) => h !== null);
    assert.equal(hits.length, 35);
    assert.deepEqual(new Set(hits.map((h) => `${h!.src}>${h!.dst}`)), new Set(['fd66::2>fd66::1', 'fd66::1>fd66::1']));
    assert.equal(hits[0]!.time, Date.parse('2026-11-21T04:17:50.427Z') + 0.28);
  });

  it('matches nftables lines with and without flags all', () => {
    const decoder = new LineDecoder([iptables]);
    const hits = lines('nftables-log.log').map((line) => hitOf(decoder.decode(line, ctx))).filter((h) => h !== null);
    assert.equal(decoder.counters.missed, 0);
    assert.equal(hits.length, 57);
  });

  it('rejects lines not tagged by the kernel and lines with text between fields', () => {
    const decoder = new LineDecoder([iptables]);
    const real = lines('iptables-kernlog.log')[2]!;
    assert.notEqual(hitOf(decoder.decode(real, ctx)), null);
    assert.equal(hitOf(decoder.decode(real.replace(' kernel: ', ' kernel[123]: '), ctx)), null);
    assert.equal(hitOf(decoder.decode(real.replace(' kernel: ', ' logger: '), ctx)), null);
    assert.equal(hitOf(decoder.decode(real.replace('SRC=10.66.0.2', 'SRC=10.66.0.2 SRC=6.6.6.6'), ctx)), null);
    assert.equal(hitOf(decoder.decode(real.replace('SRC=10.66.0.2', 'SRC=$(reboot)'), ctx)), null);
    assert.equal(hitOf(decoder.decode(`${real}; rm -rf /`, ctx)), null);
    assert.equal(hitOf(decoder.decode(real.replace('DPT=7000', 'DPT=70000'), ctx)), null);
    assert.equal(decoder.counters.matched, 1);
  });
});

describe('logformat blocks (Perl prototype form)', () => {
  const perl = block('perl', {
    required: 'kernel: .*KNOCK',
    ipclient: 'SRC=(\\S+)',
    ipserver: 'DST=(\\S+)',
    protocol: 'PROTO=(\\w+)',
    port: 'DPT=(\\d+)',
    flags: 'RES=0x\\w\\w ((?:[A-Z]{3} )*)URGP=',
    time: '^(\\S+)',
  });

  it('takes each field from the first capture of its own regex', () => {
    const decoder = new LineDecoder([new CompiledFormat(perl)]);
    const hits = lines('iptables-kernlog-rfc3339.log').map((line) => hitOf(decoder.decode(line, ctx))).filter((h) => h !== null);
    assert.equal(hits.length, 76, 'only KNOCK lines pass required');
    assert.equal(decoder.counters.ignored, 8);
    assert.equal(hits[0]!.flags, TCP_SYN);
    assert.equal(hits[0]!.sport, null, 'no sport field');
    assert.equal(hits[0]!.iface, null);
  });

  it('judges repeated flag words the same each time (the last words parsed are remembered)', () => {
    const decoder = new LineDecoder([new CompiledFormat(perl)]);
    const line = (flags: string) =>
      `2026-11-21T04:16:16Z vm kernel: KNOCK IN=eth0 OUT= SRC=10.0.0.1 DST=10.0.0.2 LEN=60 TTL=64 PROTO=TCP SPT=1000 DPT=7000 WINDOW=1 RES=0x00 ${flags}URGP=0`;
    const flags = ['SYN ', 'SYN ', 'SYN XYZ ', 'SYN XYZ ', '', 'ACK SYN ', 'SYN '].map((words) => hitOf(decoder.decode(line(words), ctx))?.flags ?? 'missed');
    assert.deepEqual(flags, [TCP_SYN, TCP_SYN, 'missed', 'missed', 0, TCP_SYN | TCP_ACK, TCP_SYN]);
    assert.equal(decoder.counters.missed, 2);
  });

  it('uses the fallback time when the format has no time field', () => {
    const { time: _time, ...noTime } = perl.fields;
    const decoder = new LineDecoder([new CompiledFormat({ ...perl, fields: noTime })]);
    assert.equal(hitOf(decoder.decode(lines('iptables-kernlog.log')[2]!, ctx))!.time, 42);
  });

  it('counts a line that passes required but lacks a field as missed, and says why', () => {
    const format = new CompiledFormat(perl);
    const decoder = new LineDecoder([format]);
    const reason = (line: string): string => {
      const decoded = decoder.decode(line, ctx);
      return decoded.outcome === Outcome.Missed ? decoded.reason : `not missed: ${decoded.outcome}`;
    };
    assert.equal(reason('Nov 21 04:16:16 vm kernel: KNOCK IN=x OUT= SRC=10.0.0.1 PROTO=TCP DPT=1'), 'its ipserver regex does not match');
    assert.equal(decoder.counters.missed, 1);
    assert.equal(reason('Nov 21 04:16:16 vm kernel: KNOCK SRC=10.0.0.1 DST=300.1.1.1 PROTO=TCP DPT=1'), 'ipserver "300.1.1.1" is not an IP address');
    assert.equal(decoder.counters.missed, 2);
    assert.equal(reason('Nov21 vm kernel: KNOCK SRC=10.0.0.1 DST=10.0.0.2 PROTO=TCP DPT=1 RES=0x00 SYN URGP=0'), 'time "Nov21" is not a timestamp knocktail reads');
    assert.equal(reason('2026-11-21T04:16:16Z vm kernel: KNOCK SRC=10.0.0.1 DST=10.0.0.2 PROTO=TCP DPT=1 RES=0x00 SYN XYZ URGP=0'), 'flags "SYN XYZ " are not TCP flags (words CWR ECE URG ACK PSH RST SYN FIN, or pf\'s letters FSRPAUEC)');
    assert.equal(decoder.decode('Nov 21 04:16:16 vm kernel: KNOCK SRC=10.0.0.1 DST=10.0.0.2 PROTO=ICMP DPT=1', ctx).outcome, Outcome.NotKnock);
    assert.equal(decoder.counters.notKnock, 1);
  });

  it('supports free spacing, comments and sub-patterns', () => {
    const format = new CompiledFormat(
      block('x', { required: '(?x) ^ (?<time>{{syslogtime}}) [ ] {{host}} [ ] kernel: [ ] # tag\n .*? SRC=(?<ipclient>{{ip}}) [ ] DST=(?<ipserver>{{ip}}) .*? PROTO=(?<protocol>TCP|UDP) [ ] SPT=(?<sport>{{port}}) [ ] DPT=(?<port>{{port}})' }),
    );
    assert.deepEqual(format.fields(lines('iptables-kernlog.log')[2]!), {
      time: 'Nov 21 04:16:16',
      ipclient: '10.66.0.2',
      ipserver: '10.66.0.1',
      protocol: 'TCP',
      sport: '39206',
      port: '7000',
    });
  });

  it('lets a later format take lines the first ignores', () => {
    const registry = FormatRegistry.load(null);
    const decoder = new LineDecoder([new CompiledFormat(perl), registry.get('iptables')]);
    const hits = lines('iptables-kernlog-rfc3339.log').map((line) => hitOf(decoder.decode(line, ctx))).filter((h) => h !== null);
    assert.equal(hits.length, 79);
    assert.equal(decoder.perFormat.get('perl'), 76);
    assert.equal(decoder.perFormat.get('iptables'), 3);
  });

  it('skips lines for ports no door watches without parsing the rest', () => {
    const decoder = new LineDecoder([FormatRegistry.load(null).get('iptables')], portWatch((proto, port) => proto === 'tcp' && port === 8000));
    const all = lines('iptables-kernlog.log');
    const hits = all.map((line) => hitOf(decoder.decode(line, ctx))).filter((h) => h !== null);
    assert.ok(hits.length > 0);
    assert.ok(hits.every((h) => h!.dport === 8000 && h!.proto === 'tcp'));
    const port8000 = all.filter((l) => l.includes(' DPT=8000 ')).length;
    assert.equal(decoder.counters.matched, port8000, 'UDP 8000 lines pass the port check and are parsed');
    assert.equal(decoder.counters.skipped, 84 - port8000, 'the others, including lines without DPT= at all, are not parsed');
    assert.equal(decoder.counters.ignored, 0);
  });

  it('decodes a block of lines exactly as line by line, with or without the port pre-check, and says where each hit\'s line ends', () => {
    const registry = FormatRegistry.load(null);
    const real = [...lines('iptables-kernlog.log'), ...lines('ip6tables-kernlog.log')];
    const tricky = [real[2]!.replace('KNOCK ', 'DPT=1 '), real[3]!.replace('DPT=8000', 'DPT=8000x'), `${real[4]!}\r`, 'DPT=7000', '', 'x'.repeat(500)];
    const all = [...real, ...tricky];
    const text = all.join('\n');
    for (const formats of [[registry.get('iptables')], [registry.get('ufw'), registry.get('iptables')]]) {
      for (const watch of [portWatch((proto, port) => proto === 'tcp' && port === 7000), null]) {
        const oneByOne = new LineDecoder(formats, watch);
        const expected = all.map((line) => line.replace(/\r$/, '')).map((line) => hitOf(oneByOne.decode(line, ctx))).filter((hit) => hit !== null);
        const block = new LineDecoder(formats, watch);
        const hits: unknown[] = [];
        const ends: number[] = [];
        assert.equal(block.decodeLines(text, ctx, (hit, end) => hits.push(hit) && ends.push(end)), all.length);
        assert.deepEqual(hits, expected);
        assert.deepEqual(block.counters, oneByOne.counters);
        for (const end of ends) assert.ok(end === text.length || text[end] === '\n', `a line end at ${end}`);
      }
    }
  });

  it('derives the literal text before the port from the patterns, or none when unsure', () => {
    const marker = (fields: Partial<Record<LogField, string>>) =>
      new CompiledFormat(block('m', { ipclient: '(x)', ipserver: '(x)', protocol: '(x)', ...fields })).portMarker;
    assert.equal(FormatRegistry.load(null).get('iptables').portMarker, 'DPT=');
    assert.equal(marker({ port: 'DPT=(\\d+)' }), 'DPT=');
    assert.equal(marker({ port: '\\sDPT=(\\d+)' }), 'DPT=');
    assert.equal(marker({ required: 'x DPORT:(?<port>\\d+)' }), 'DPORT:');
    assert.equal(marker({ port: '(?i)dpt=(\\d+)' }), null, 'case-insensitive');
    assert.equal(marker({ port: 'DPT=?(\\d+)' }), null, 'quantified');
    assert.equal(marker({ port: '(?:DPT|DP)=(\\d+)' }), null, 'alternation');
    assert.equal(marker({ port: 'T=(\\d+)' }), null, 'too short to help');
  });

  it('never skips a line whose real port is watched, whatever appears earlier in it', () => {
    const anchored = new CompiledFormat(block('a', { ipclient: ' SRC=(\\S+)', ipserver: ' DST=(\\S+)', protocol: 'PROTO=(\\w+)', port: 'DPT=(\\d+) WINDOW' }));
    assert.equal(anchored.portMarker, 'DPT=');
    const decoder = new LineDecoder([anchored], portWatch((proto, port) => proto === 'tcp' && port === 7000));
    const real = lines('iptables-kernlog.log')[2]!;
    const decoy = real.replace('KNOCK ', 'KNOCK DPT=1 DPT=x DPT=123456 ');
    assert.equal(hitOf(decoder.decode(decoy, ctx))?.dport, 7000);
    assert.equal(hitOf(decoder.decode(real.replace('DPT=7000', 'DPT=7001'), ctx)), null);
    assert.equal(decoder.counters.skipped, 1);
  });

  it('reads groups right around classes, escapes and lookarounds without XRegExp', () => {
    const format = new CompiledFormat(
      block('g', { required: String.raw`[(]SRC=(?<ipclient>\S+) \((x|y)\) (?<=\) )(?<!z)DST=(?<ipserver>\S+) (?:PROTO=)(?<protocol>\w+) DPT=(?<port>\d+)` }),
    );
    assert.deepEqual(format.fields('(SRC=10.0.0.1 (x) DST=10.0.0.2 PROTO=TCP DPT=7000'), { ipclient: '10.0.0.1', ipserver: '10.0.0.2', protocol: 'TCP', port: '7000' });
  });

  it('loads XRegExp only for patterns that need it (the shipped formats do not)', () => {
    const probe = `
      import { createRequire } from 'node:module';
      const { FormatRegistry } = await import(${JSON.stringify(new URL('../../src/formats/registry.js', import.meta.url).href)});
      const registry = FormatRegistry.load(null);
      for (const name of registry.names()) registry.get(name);
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes('/xregexp/'));
      const before = loaded();
      const { CompiledFormat } = await import(${JSON.stringify(new URL('../../src/formats/logformat.js', import.meta.url).href)});
      const at = { file: 'x', line: 1 };
      new CompiledFormat({ name: 'x', at, fields: { required: { pattern: '(?x) SRC=(?<ipclient>\\S+) [ ] DST=(?<ipserver>\\S+) [ ] PROTO=(?<protocol>\\w+) [ ] DPT=(?<port>\\d+)', at } } });
      console.log(JSON.stringify({ before, after: loaded() }));`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { before: false, after: true });
  });

  const compileErrors: Array<[string, Partial<Record<LogField, string>>, RegExp]> = [
    ['an invalid regex', { required: '(unclosed', ipclient: '(x)', ipserver: '(x)', protocol: '(x)', port: '(x)' }, /required is not a valid regex/],
    ['a field without a group', { ipclient: 'SRC=\\S+', ipserver: '(x)', protocol: '(x)', port: '(x)' }, /ipclient has no capturing group/],
    ['a missing mandatory field', { ipclient: '(x)', ipserver: '(x)', protocol: '(x)' }, /no port field/],
    ['a named group that is no field', { required: '(?<srcip>x)', ipclient: '(x)', ipserver: '(x)', protocol: '(x)', port: '(x)' }, /\(\?<srcip>\) is not a field/],
    ['a field captured twice', { required: '(?<port>x)', ipclient: '(x)', ipserver: '(x)', protocol: '(x)', port: '(x)' }, /field port is captured twice/],
  ];
  for (const [what, fields, message] of compileErrors) {
    it(`reports ${what} with file and line`, () => {
      assert.throws(
        () => new CompiledFormat(block('bad', fields)),
        (error: unknown) => error instanceof ConfigError && message.test(error.message) && /test\.conf:\d+:/.test(error.message),
      );
    });
  }
});
