/**
 * `knocktail replay FILE.pcap` through the CLI on every real capture of fixtures/real, against the MANIFEST's
 * ground truth: which doors open for whom, for a config with the MANIFEST's sequences S1-S3
 * (fixtures/conf/manifest.conf), with event time from the packet headers. test/replay.test.ts does the same
 * for the kernel logs of the same knocks; the captures must give the same answer.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fixture, runCli, replayEvents, type ReplayEvent } from '../helpers.js';
import { stepAt } from '../steps.js';

const env = { ...process.env, TZ: 'UTC' };
const CONF = fixture('conf', 'manifest.conf');



const opens = (events: ReplayEvent[]): string[] => events.filter((e) => e.event === 'open').map((e) => `${e.door} ${e.ip} ${stepAt(Date.parse(e.time))}`);

// Phase A (IPv4): S1 (syn,!ack) opens for A01, A04 (1 s apart), A20 (hping3 SYNs ~1.05 s apart) and A25; the
// FIN/ACK/SYN+ACK/RST/PSH/URG/xmas/null knocks (A12-A19) are invisible to it; A05, A06 (wrong order), A07
// (incomplete), A08 (its 7000 fails A07's leftover attempt, still inside its 5 s), A09, A10 (wrong protocol) and
// A11 (repeated first port) open nothing; S2 opens for A02, S3 for A03.
const PHASE_A = ['S1 10.66.0.2 A01', 'S2 10.66.0.2 A02', 'S3 10.66.0.2 A03', 'S1 10.66.0.2 A04', 'S1 10.66.0.2 A20', 'S1 10.66.0.2 A25'];
// Phase B (IPv6): B01-B03 and B11; B06's 7000 fails B04's leftover attempt (9000, 8000, 7000 four seconds earlier).
const PHASE_B = ['S1 fd66::2 B01', 'S2 fd66::2 B02', 'S3 fd66::2 B03', 'S1 fd66::2 B11'];
// Phase C (the server knocking on itself over lo): C01 (S1), C02 (S2), C03 (S1 over IPv6); C04 is reversed.
const PHASE_C = ['S1 10.66.0.1 C01', 'S2 10.66.0.1 C02', 'S1 fd66::1 C03'];
// Phase D: D01-D03, D08 and D09 over IPv6. D10's lone 7000 starts an S1 attempt; D11 follows 3 s later, and its
// 7000 fails that attempt instead of starting a new one (knockd's rule, §3.3 step 4), so D11 opens nothing.
const PHASE_D = ['S1 10.66.0.2 D01', 'S2 10.66.0.2 D02', 'S3 10.66.0.2 D03', 'S1 fd66::2 D08', 'S2 fd66::2 D09'];
// Phase F (all packets, although ufw logged only some): F01-F03, F06 and F07 over IPv6, F08; F04 is reversed, F05 FIN.
const PHASE_F = ['S1 10.66.0.2 F01', 'S2 10.66.0.2 F02', 'S3 10.66.0.2 F03', 'S1 fd66::2 F06', 'S2 fd66::2 F07', 'S1 10.66.0.2 F08'];

const CAPTURES: Record<string, string[]> = {
  'knocks.pcap': PHASE_A,
  'knocks6.pcap': PHASE_B,
  'loopback.pcap': PHASE_C,
  'knocks-any.pcap': [...PHASE_A, ...PHASE_B, ...PHASE_C],
  'knocks-any-sll.pcap': PHASE_D,
  'ufw-knocks.pcap': PHASE_F,
};

describe('knocktail replay on the real packet captures', () => {
  it('covers every capture in fixtures/real', () => {
    const files = readdirSync(fixture('real')).filter((name) => /\.pcap(ng)?$/.test(name));
    assert.deepEqual(files.sort(), Object.keys(CAPTURES).sort());
  });

  for (const [file, expected] of Object.entries(CAPTURES)) {
    it(`${file}: opens exactly what the ground truth implies`, async () => {
      assert.deepEqual(opens(await replayEvents(['-c', CONF, fixture('real', file)])), expected);
    });
  }

  it('event time is the capture time: the A01 open, its start command, and the stop Cmd_Timeout (10 s) later', async () => {
    const events = await replayEvents(['-c', CONF, fixture('real', 'knocks.pcap')]);
    // A01's 9000 SYN, the knock that opens S1, as tcpdump decoded it from the same file.
    const decode = readFileSync(fixture('real', 'pcap-decodes', 'knocks.txt'), 'utf8');
    const knock = /^2026-11-21 (04:16:16\.\d{3})\d{3} .*\n.*10\.66\.0\.2\.\d+ > 10\.66\.0\.1\.9000: Flags \[S\]/m.exec(decode);
    assert.ok(knock, 'the 9000 SYN of A01 in the tcpdump decode');
    const first = (type: string): ReplayEvent => events.find((e) => e.event === type && e.door === 'S1')!;
    assert.deepEqual(
      ['open', 'start', 'stop'].map((type) => [type, first(type).ip, first(type).command ?? '', first(type).time]),
      [
        ['open', '10.66.0.2', '', `2026-11-21T${knock[1]}Z`],
        ['start', '10.66.0.2', 'open-ssh 10.66.0.2', `2026-11-21T${knock[1]}Z`],
        ['stop', '10.66.0.2', 'close-ssh 10.66.0.2', `2026-11-21T${knock[1]!.replace('16:16', '16:26')}Z`],
      ],
    );
  });

  it('captures given together are merged by time (knocks.pcap and knocks6.pcap = phases A and B in order)', async () => {
    const events = await replayEvents(['-c', CONF, fixture('real', 'knocks6.pcap'), fixture('real', 'knocks.pcap')]);
    assert.deepEqual(opens(events), [...PHASE_A, ...PHASE_B]);
  });

  it('--local: only knocks to the capturing host count for doors without Target, as the live daemon judges them', async () => {
    const capture = fixture('real', 'knocks-any.pcap');
    assert.deepEqual(opens(await replayEvents(['-c', CONF, '--local', '10.66.0.1', capture])), [...PHASE_A, 'S1 10.66.0.1 C01', 'S2 10.66.0.1 C02']);
    assert.deepEqual(opens(await replayEvents(['-c', CONF, '--local', 'fd66:0::1', '--local', '192.0.2.1', capture])), [...PHASE_B, 'S1 fd66::1 C03']);
    assert.deepEqual(opens(await replayEvents(['-c', CONF, '--local', '10.66.0.99,fd66::99', capture])), []);
    const bad = await runCli(['replay', '--local', '10.66.0', '-c', CONF, capture], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--local "10\.66\.0" is not an IP address/);
  });

  it('the table report names the doors and knockers', async () => {
    const result = await runCli(['replay', '-c', CONF, fixture('real', 'knocks-any-sll.pcap')], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /door S1 opened 2 times for 10\.66\.0\.2, fd66::2$/m);
    assert.match(result.stdout, /door S3 opened 1 time for 10\.66\.0\.2$/m);
  });
});
