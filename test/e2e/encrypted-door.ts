/**
 * Encrypted-knock doors end to end (issue 15), run by encrypted-file.test.ts (kernel LOG with the README's rate
 * limit → rsyslog → kern.log → daemon) and encrypted-pcap.test.ts (live capture): `knocktail knock -c … --port P
 * --for S` from the client namespace opens the requested port for the requested time and the stop closes it after
 * (the commands record %PORT% and %DURATION%); the same knocks again (raw packets) from the same source are a
 * `replay`, from another source they do not authenticate (`auth`); a message with one port changed opens nothing
 * while the message as made opens; a port outside Allowed_Ports and a duration over Max_Duration are refused (not
 * cut down, as docs/encrypted-knocks.md says); behind a real NAT (SNAT in the client namespace) a message without
 * --ip warns and opens nothing, with --ip the public address opens, and another address only with Trust_Knock_IP.
 * Then `knocktail replay` of the kern.log and of tcpdump's capture reports the same opens and refusals.
 *
 * A message that fails to authenticate is refused when its Seq_Timeout (5 s here) has passed; its data knocks that
 * happen to equal a sync value start messages of their own, which end as `incomplete` refusals. So the test waits
 * for events (commands, log lines, the daemon's refusal count, nothing left in progress), never for a time.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/parse.js';
import { encryptedDoorSpec, type EncryptedDoorSpec } from '../../src/knocks/decoder.js';
import type { ReplayEvent } from '../helpers.js';
import { ip, type Link, type RawEvent, until } from '../inputs/pcap-lab.js';
import { message } from '../knocks/message-support.js';
import { writeSecretFile } from '../knocks/support.js';
import { type Mode, RangeLab, rangeLabSkip, verdicts } from './range-lab.js';

const TIMEOUT = { timeout: 90_000 };
/** The README's rate limit for a span (file mode): a burst holds the longest message. */
const README_LIMIT = { perSecond: 20, burst: 60 };

/** Knocks of the longest message here: one naming an IPv4 address on a span of 2^10 ports (docs/encrypted-knocks.md). */
const LONGEST = 25;

/** Stand-ins for public addresses (documentation ranges): the server's public address, the client's NAT, a laptop. */
const PUBLIC_HOST = '203.0.113.77';
const NAT_ADDRESS = '198.51.100.7';
const LAPTOP = '192.0.2.50';

/** `enc` binds messages to where they come from; `nat` trusts the address a message names. Spans of 2^10 ports. */
const DOORS = [
  { name: 'enc', span: '46000-47023', trust: 'no' },
  { name: 'nat', span: '48000-49023', trust: 'yes' },
];

/** `hitting tcp ADDRESS:PORT` lines of knock -v: the ports knocked. */
const hit = (stdout: string): number[] => [...stdout.matchAll(/^hitting tcp \S+:(\d+)$/gm)].map((match) => Number(match[1]));

const syns = (src: string, dst: string, ports: readonly number[]): RawEvent[] => ports.map((dport, i) => ({ src, dst, proto: 'tcp', sport: 30000 + i, dport, flags: 'S' }));

const escaped = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function encryptedDoorSuite(mode: Mode, tag: string, second: number): void {
  describe(`encrypted doors end to end, ${mode === 'file' ? 'file mode (kernel LOG → rsyslog → kern.log)' : 'pcap mode (live capture)'}`, { skip: rangeLabSkip(mode) }, () => {
    const lab = new RangeLab(tag, second, mode);
    let link: Link;
    let client: string;
    let clientConf: string;
    let enc: EncryptedDoorSpec;
    /** The genuine message's ports (test 1), sent again by test 2. */
    let genuine: number[] = [];
    const [sniffer, tampered, tamperedTag] = ['66', '71', '72'];
    const at = (host: string): string => `${link.net4}.${host}`;

    before(async () => {
      link = await lab.setUp(DOORS.map((door) => ({ ports: door.span.replace('-', ':'), limit: { name: door.name, ...README_LIMIT } })));
      client = link.clientIp;
      // The public host is the server's address across a NAT router: the client namespace rewrites the source of
      // what it sends there to the NAT's address (as knock-encrypted.test.ts does), and the server routes back to it.
      ip('-n', lab.serverNs, 'addr', 'add', `${PUBLIC_HOST}/32`, 'dev', link.server);
      ip('-n', lab.serverNs, 'route', 'add', NAT_ADDRESS, 'dev', link.server);
      ip('-n', lab.clientNs, 'route', 'add', PUBLIC_HOST, 'dev', link.client);
      ip('netns', 'exec', lab.clientNs, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-d', PUBLIC_HOST, '-j', 'SNAT', '--to-source', NAT_ADDRESS);

      const dir = lab.fw.dir;
      const sections = DOORS.map((door) => ({
        door,
        lines: [`Knock_Key = ${writeSecretFile(dir, undefined, `${door.name}.key`)}`, `Port_Span = ${door.span}`, 'Allowed_Ports = 22, 2222'],
      }));
      const section = (name: string, lines: string[]): string => `[${name}]\n${lines.map((line) => `  ${line}\n`).join('')}`;
      // The client's copy: what the README gives a client (key, span, allowed ports), no commands.
      clientConf = join(dir, 'client.conf');
      writeFileSync(clientConf, sections.map(({ door, lines }) => section(door.name, lines)).join(''));
      await lab.start(sections.map(({ door, lines }) => section(door.name, [
        ...lines,
        'Max_Duration = 600',
        `Trust_Knock_IP = ${door.trust}`,
        'Seq_Timeout = 5',
        `Start_Command = echo "START ${door.name} %IP% %PORT% %DURATION% %KNOCK_IP%" >> ${lab.commands}`,
        `Stop_Command = echo "STOP ${door.name} %IP% %PORT% %DURATION%" >> ${lab.commands}`,
      ])).join(''));
      enc = encryptedDoorSpec(loadConfig(lab.conf).doors.find((door) => door.name === 'enc')!);
    });
    after(() => lab.tearDown());

    /** `knocktail knock -c client.conf -v HOST DOOR --port P --for S ARGS…`, which must succeed. */
    const knock = async (host: string, door: string, port: number, seconds: number, ...args: string[]) => {
      const run = await lab.knocktail(['-c', clientConf, '-v', host, door, '--port', String(port), '--for', String(seconds), ...args]);
      assert.equal(run.code, 0, run.stderr);
      return run;
    };
    /** Waits until the door's stop for `ip` has run: its start came before. */
    const untilClosed = (line: string) => until(() => lab.commandLines().includes(line), () => `"${line}" in:\n${lab.commandLines().join('\n')}\n${lab.daemon.output.slice(-2000)}`);

    test('a message opens the requested port for the requested time, and the stop closes it after', TIMEOUT, async () => {
      const run = await knock(link.serverIp, 'enc', 22, 2);
      assert.equal(run.stderr, '', 'no warning: both addresses are private');
      genuine = hit(run.stdout);
      assert.equal(genuine.length, 21, 'docs/encrypted-knocks.md: 21 knocks on a span of 2^10 ports');
      await untilClosed(`STOP enc ${client} 22 2`);
      assert.deepEqual(lab.commandLines(), [`START enc ${client} 22 2 ${client}`, `STOP enc ${client} 22 2`]);
      await lab.untilLog(new RegExp(`${escaped(client)}: enc: OPEN SESAME \\(port 22 for 2 s\\)`));
    });

    test('the same knocks again open nothing: from the same source a replay, from another they do not authenticate', TIMEOUT, async () => {
      assert.equal(genuine.length, 21, 'the genuine message was knocked');
      await lab.rateLimitAllows('enc', client, LONGEST);
      await lab.send(syns(client, link.serverIp, genuine));
      await lab.untilLog(new RegExp(`${escaped(client)}: enc: refused \\(replay\\): message \\S+ was used already at \\S+ from ${escaped(client)}`));
      await lab.send(syns(at(sniffer), link.serverIp, genuine));
      await lab.untilLog(new RegExp(`${escaped(at(sniffer))}: enc: refused \\(auth\\): `));
      await lab.marker();
      assert.equal(lab.commandLines().length, 2, 'nothing opened again');
    });

    test('a message with one port changed opens nothing; the message as made opens', TIMEOUT, async () => {
      const portsOf = (values: number[]): number[] => values.map((value) => enc.span.portOf(value).port);
      const made = (source: string): number[] => message(enc, { time: Date.now(), source, request: { port: 22, duration: 1 } });
      // A port in the middle moved by one: its check bits no longer follow the chain.
      const middle = made(at(tampered));
      middle[5] = (middle[5]! + 1) % 2 ** enc.span.bits;
      // The last port moved by half the span: its check bits (the low 3 bits of the value) are kept, so the decoder
      // gets as far as opening the message, and the tag refuses it.
      const original = made(at(tamperedTag));
      const last = original.with(-1, original.at(-1)! ^ (1 << (enc.span.bits - 1)));
      const refusedBefore = await lab.refused();
      await lab.send([...syns(at(tampered), link.serverIp, portsOf(middle)), ...syns(at(tamperedTag), link.serverIp, portsOf(last))]);
      await lab.untilRefused(refusedBefore + 2);
      await lab.untilIdle();
      await lab.send(syns(at(tamperedTag), link.serverIp, portsOf(original)));
      await untilClosed(`STOP enc ${at(tamperedTag)} 22 1`);
      await lab.marker();
      assert.deepEqual(lab.commandLines().slice(2), [`START enc ${at(tamperedTag)} 22 1 ${at(tamperedTag)}`, `STOP enc ${at(tamperedTag)} 22 1`]);
    });

    test('a port outside Allowed_Ports and a duration over Max_Duration open nothing (refused, not cut down)', TIMEOUT, async () => {
      await lab.rateLimitAllows('enc', client, LONGEST);
      await knock(link.serverIp, 'enc', 8080, 2);
      await lab.untilLog(new RegExp(`${escaped(client)}: enc: refused \\(port\\): it asks for port 8080, which Allowed_Ports does not list`));
      await lab.rateLimitAllows('enc', client, LONGEST);
      await knock(link.serverIp, 'enc', 22, 601);
      await lab.untilLog(new RegExp(`${escaped(client)}: enc: refused \\(duration\\): `));
      await lab.marker();
      assert.equal(lab.commandLines().length, 4, 'nothing opened');
    });

    test('behind NAT: without --ip a warning and nothing opens; --ip with the public address opens; another address only with Trust_Knock_IP', TIMEOUT, async () => {
      const refusedBefore = await lab.refused();
      const unnamed = await knock(PUBLIC_HOST, 'nat', 22, 1);
      assert.match(unnamed.stderr, new RegExp(`^knocktail knock: warning: this host knocks ${escaped(PUBLIC_HOST)} from ${escaped(client)}, a private address: a NAT router on the way`));
      await lab.untilRefused(refusedBefore + 1);
      await lab.untilIdle();
      await lab.marker();
      assert.equal(lab.commandLines().length, 4, 'the message bound to the private address opened nothing');

      const own = await knock(PUBLIC_HOST, 'enc', 22, 1, '--ip', NAT_ADDRESS);
      assert.equal(own.stderr, '', 'no warning: the message names the address');
      await untilClosed(`STOP enc ${NAT_ADDRESS} 22 1`);
      await lab.rateLimitAllows('enc', NAT_ADDRESS, LONGEST);
      await knock(PUBLIC_HOST, 'enc', 22, 1, '--ip', LAPTOP);
      await lab.untilLog(new RegExp(`${escaped(NAT_ADDRESS)}: enc: refused \\(address\\): `));
      await lab.rateLimitAllows('nat', NAT_ADDRESS, LONGEST);
      await knock(PUBLIC_HOST, 'nat', 22, 1, '--ip', LAPTOP);
      await untilClosed(`STOP nat ${LAPTOP} 22 1`);
      assert.deepEqual(lab.commandLines().slice(4), [
        `START enc ${NAT_ADDRESS} 22 1 ${NAT_ADDRESS}`,
        `STOP enc ${NAT_ADDRESS} 22 1`,
        `START nat ${LAPTOP} 22 1 ${NAT_ADDRESS}`,
        `STOP nat ${LAPTOP} 22 1`,
      ]);
      await lab.untilLog(new RegExp(`${escaped(LAPTOP)}: nat: OPEN SESAME \\(port 22 for 1 s, knocked from ${escaped(NAT_ADDRESS)}\\)`));
    });

    test('replay of the kern.log and of the capture reports the opens and the refusals, as the daemon did', TIMEOUT, async () => {
      await lab.untilIdle();
      await lab.marker();
      const log = await lab.stop();
      const daemon = DOORS.map((door) => ({ door: door.name, ...verdicts(log, door.name) }));
      const expectedOpens = [
        `enc ${client} 22 2 ${client}`,
        `enc ${at(tamperedTag)} 22 1 ${at(tamperedTag)}`,
        `enc ${NAT_ADDRESS} 22 1 ${NAT_ADDRESS}`,
        `nat ${LAPTOP} 22 1 ${NAT_ADDRESS}`,
      ];
      // Refusals that must be there, besides `incomplete` ones (knocks of messages that failed to authenticate that
      // happened to equal a sync value); the changed port in the middle ends as `auth` or `incomplete`.
      const expectedRefusals = [
        `enc ${client} replay`,
        `enc ${at(sniffer)} auth`,
        `enc ${at(tamperedTag)} auth`,
        `enc ${client} port`,
        `enc ${client} duration`,
        `nat ${NAT_ADDRESS} auth`,
        `enc ${NAT_ADDRESS} address`,
      ];
      const files = mode === 'file' ? [lab.kernLog, lab.pcap] : [lab.pcap];
      for (const file of files) {
        const { events, summary } = await lab.replay(file);
        const opens = events.filter((e) => e.event === 'open' && e.door !== 'marker').map((e) => `${e.door} ${e.ip} ${e.port} ${e.duration} ${e.knockIp ?? e.ip}`);
        assert.deepEqual(opens, expectedOpens, file);
        const refused = events.filter((e): e is ReplayEvent & { reason: string } => e.event === 'refused').map((e) => `${e.door} ${e.ip} ${e.reason}`);
        const rest = [...refused];
        for (const wanted of [...expectedRefusals, `enc ${at(tampered)} auth|incomplete`]) {
          const [door, address, reasons] = wanted.split(' ') as [string, string, string];
          const index = rest.findIndex((r) => reasons.split('|').some((reason) => r === `${door} ${address} ${reason}`));
          assert.ok(index >= 0, `${file}: no refusal "${wanted}" among ${JSON.stringify(refused)}`);
          rest.splice(index, 1);
        }
        assert.deepEqual(rest.filter((r) => !r.endsWith(' incomplete')), [], `${file}: only incomplete refusals besides`);
        // The daemon logged the same refusals (each reason's first of a burst by itself, the others counted).
        for (const { door, refusedByReason } of daemon) {
          const replayed = Object.fromEntries(summary.refused.filter((r) => r.door === door).map((r) => [r.reason, r.count]));
          assert.deepEqual(refusedByReason, replayed, `${file}: door ${door}, the daemon's log against replay's summary`);
        }
        assert.deepEqual(daemon.flatMap((d) => d.opens.map((open) => `${d.door} ${open}`)), [
          `enc ${client}: port 22 for 2 s`,
          `enc ${at(tamperedTag)}: port 22 for 1 s`,
          `enc ${NAT_ADDRESS}: port 22 for 1 s`,
          `nat ${LAPTOP}: port 22 for 1 s, knocked from ${NAT_ADDRESS}`,
        ]);
        assert.equal(summary.complete, true);
      }
    });
  });
}
