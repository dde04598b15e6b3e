/**
 * pcap mode end to end: the real daemon (`node dist/src/cli.js -c CONF -i IF`, Mode = pcap) capturing live on a
 * veth pair in network namespaces made here, knocked by the stock `knock` client and by raw packets with chosen
 * flags; the doors' commands append to a file this test reads. Also: several interfaces, `any`, an address
 * added while running, one-time sequences and a reload moving the capture filter, statistics at exit, a clean
 * stop with no traffic, and the start-up error when the optional pcap module is missing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cliPath, needs, repoRoot, tempDir } from '../helpers.js';
import { commandsFinished, type Daemon, fileLines, ip, Lab, type Link, type RawEvent, until, waitForLine } from '../inputs/pcap-lab.js';

const lab = new Lab('kpd', 233);
const skip = needs({ root: true, tools: ['ip', 'knock', 'python3'] });

/** A door that opens on one SYN to 7999: once its START line is there, every packet sent before it was seen. */
const MARKER_DOOR = (commands: string) => `[marker]\n\tsequence = 7999\n\ttcpflags = syn\n\tstart_command = echo "START marker %IP%" >> ${commands}\n`;

interface Run {
  dir: string;
  conf: string;
  commands: string;
  log: string;
  daemon: Daemon;
}

/** Writes the config (options + doors; `%CMDS%` stands for the commands file) and starts the daemon in the server namespace. */
async function startDaemon(options: string, doors: string, args: string[]): Promise<Run> {
  const dir = tempDir('knocktail-e2e-');
  const commands = join(dir, 'commands.txt');
  const log = join(dir, 'knocktail.log');
  const conf = join(dir, 'knocktail.conf');
  writeFileSync(conf, configText(dir, options, doors));
  const daemon = lab.spawnInServer(process.execPath, [cliPath, '-c', conf, '-v', ...args]);
  await daemon.waitForOutput('listening on');
  return { dir, conf, commands, log, daemon };
}

function configText(dir: string, options: string, doors: string): string {
  const commands = join(dir, 'commands.txt');
  return (
    `[options]\n\tMode = pcap\n\tStateDir = ${join(dir, 'state')}\n\tLogFile = ${join(dir, 'knocktail.log')}\n${options}\n` +
    doors.replaceAll('%CMDS%', commands) +
    MARKER_DOOR(commands)
  );
}

/**
 * A raw SYN to the marker door from `src`, then waits for its command and for every command to finish: everything
 * sent earlier (on the same interface) has been judged, and the commands of what opened have all run.
 */
async function marker(run: Run, link: Link, src: string, dst = link.serverIp): Promise<void> {
  await lab.send([{ src, dst, proto: 'tcp', sport: 40999, dport: 7999, flags: 'S' }]);
  await waitForLine(run.commands, `START marker ${src}`);
  await commandsFinished(join(run.dir, 'state'));
}

const syn = (src: string, dst: string, ...ports: number[]): RawEvent[] => ports.map((dport, i) => ({ src, dst, proto: 'tcp', sport: 41000 + i, dport, flags: 'S' }));

function promiscuity(link: Link): number {
  const [details] = JSON.parse(ip('-n', lab.serverNs, '-d', '-j', 'link', 'show', link.server)) as Array<{ promiscuity: number }>;
  return details!.promiscuity;
}

/** The daemon's commands apart from the marker's, sorted (commands of different knocks run concurrently). */
const knockCommands = (run: Run): string[] => fileLines(run.commands).filter((line) => !line.startsWith('START marker')).sort();

describe('pcap mode: the daemon on a live interface', { skip }, () => {
  let link: Link;
  let link2: Link;
  const runs: Run[] = [];
  const start = async (options: string, doors: string, args: string[]): Promise<Run> => {
    const run = await startDaemon(options, doors, args);
    runs.push(run);
    return run;
  };

  before(() => {
    lab.setUp(2);
    [link, link2] = lab.links as [Link, Link];
  });
  after(async () => {
    for (const run of runs) await run.daemon.stop(5000);
    lab.tearDown();
  });

  test('knock client (TCP, UDP, mixed, IPv6) and raw packets with chosen flags run exactly the right commands; statistics at exit', async () => {
    const doors = `
[tcp]
	sequence = 7000,8000,9000
	seq_timeout = 5
	tcpflags = syn,!ack
	start_command = echo "START tcp %IP%" >> %CMDS%
	cmd_timeout = 1
	stop_command = echo "STOP tcp %IP%" >> %CMDS%
[udp]
	sequence = 7100:udp,7200:udp,7300:udp
	start_command = echo "START udp %IP%" >> %CMDS%
[mixed]
	sequence = 2222:udp,3333:tcp,4444:udp
	start_command = echo "START mixed %IP%" >> %CMDS%
[fin]
	sequence = 7400,7500
	tcpflags = fin,!syn
	start_command = echo "START fin %IP%" >> %CMDS%
`;
    const run = await start('', doors, ['-i', link.server]);
    assert.equal(promiscuity(link), 0, 'not promiscuous unless Promiscuous = yes');
    const { serverIp: server, clientIp: client, serverIp6: server6, clientIp6: client6 } = link;
    lab.knock(server, '7000', '8000', '9000');
    lab.knock('-6', server6, '7000', '8000', '9000');
    lab.knock('-u', server, '7100', '7200', '7300');
    lab.knock('-6', server6, '2222:udp', '3333', '4444:udp');
    const synAck = `${link.net4}.51`;
    const finKnocker = `${link.net4}.52`;
    const synToFin = `${link.net4}.53`;
    const extKnocker = `${link.net6}::54`;
    await lab.send([
      // SYN+ACK is not a knock for `tcp` (ACK must be clear): nothing opens.
      ...syn(synAck, server, 7000, 8000, 9000).map((p) => ({ ...p, flags: 'SA' })),
      // FIN packets open `fin`; SYNs to the same ports do not.
      ...syn(finKnocker, server, 7400, 7500).map((p) => ({ ...p, flags: 'F' })),
      ...syn(synToFin, server, 7400, 7500),
      // IPv6 with a destination-options header before TCP: parsed, so it counts (knockd drops it).
      ...syn(extKnocker, server6, 7000, 8000, 9000).map((p) => ({ ...p, ext: true })),
    ]);
    await marker(run, link, `${link.net4}.59`);
    for (const knocker of [client, client6, extKnocker]) await waitForLine(run.commands, `STOP tcp ${knocker}`);
    assert.deepEqual(
      knockCommands(run),
      [
        `START fin ${finKnocker}`,
        `START mixed ${client6}`,
        `START tcp ${client}`,
        `START tcp ${client6}`,
        `START tcp ${extKnocker}`,
        `START udp ${client}`,
        `STOP tcp ${client}`,
        `STOP tcp ${client6}`,
        `STOP tcp ${extKnocker}`,
      ].sort(),
    );
    assert.deepEqual(await run.daemon.stop(), { code: 0, signal: null });
    const log = readFileSync(run.log, 'utf8');
    const stats = new RegExp(
      `pcap:${link.server}: capture statistics: ${link.server} (\\d+) packets received, (\\d+) dropped by the kernel, (\\d+) by the interface; (\\d+) hits(?:, (\\d+) of them received twice \\(by both captures during a filter change\\))?\n`,
    ).exec(log);
    assert.ok(stats, `no statistics line in the log:\n${log}`);
    // The kernel filter let through 12 knock-client packets, 2 FINs, 3 IPv6 packets with an extension header and
    // the marker (not the SYN+ACKs, the SYNs to `fin`): all received, none dropped, each one a hit. A filter change
    // (the veth's link-local address can appear only after the daemon started) makes two captures overlap: a packet
    // both received is counted twice by the kernel, and said so.
    const [received, dropped, ifdropped, hits, twice] = stats.slice(1).map((n) => Number(n ?? 0));
    assert.deepEqual([received! - twice!, dropped, ifdropped, hits], [18, 0, 0, 18], log);
    assert.match(log, /shutting down\n$/);
    assert.deepEqual(lab.serverPids(), [], 'no capture process left behind');
  });

  const twoDoors = `
[d]
	sequence = 7000,8000,9000
	start_command = echo "START d %IP%" >> %CMDS%
`;

  test('several interfaces: -i twice, Interface = a,b (with Promiscuous = yes), and `any`', async () => {
    const variants: Array<{ options: string; args: string[]; promiscuous: number }> = [
      { options: '', args: ['-i', link.server, '-i', link2.server], promiscuous: 0 },
      { options: `\tInterface = ${link.server},${link2.server}\n\tPromiscuous = yes`, args: [], promiscuous: 1 },
      { options: '', args: ['-i', 'any'], promiscuous: 0 },
    ];
    for (const [index, variant] of variants.entries()) {
      const run = await start(variant.options, twoDoors, variant.args);
      assert.deepEqual([promiscuity(link), promiscuity(link2)], [variant.promiscuous, variant.promiscuous], `variant ${index}`);
      const first = `${link.net4}.${60 + index}`;
      const second = `${link2.net4}.${60 + index}`;
      await lab.send([...syn(first, link.serverIp, 7000, 8000, 9000), ...syn(second, link2.serverIp, 7000, 8000, 9000)]);
      // One capture per interface: each interface's knocks are judged in order, the two interfaces in any order.
      await waitForLine(run.commands, `START d ${first}`);
      await marker(run, link2, `${link2.net4}.${70 + index}`, link2.serverIp);
      assert.deepEqual(knockCommands(run), [`START d ${first}`, `START d ${second}`], `variant ${index}: ${JSON.stringify(variant)}`);
      assert.deepEqual(await run.daemon.stop(), { code: 0, signal: null });
    }
  });

  test('an address added to the interface while running counts as local once it is there (knockd never sees it)', async () => {
    const run = await start('', twoDoors, ['-i', link.server]);
    const added = `${link.net4}.9`;
    lab.routeToServer(link, added);
    const early = `${link.net4}.80`;
    await lab.send(syn(early, added, 7000, 8000, 9000));
    await marker(run, link, `${link.net4}.81`);
    assert.deepEqual(knockCommands(run), [], 'not a local address yet');
    const capture = await lab.settledCapture(run.daemon.pid);
    ip('-n', lab.serverNs, 'addr', 'add', `${added}/24`, 'dev', link.server);
    try {
      // Addresses are re-read every 5 s; a new one gets a new capture filter, in force once its process alone runs.
      await lab.captureReplaced(run.daemon.pid, capture);
      const knocker = `${link.net4}.90`;
      await lab.send(syn(knocker, added, 7000, 8000, 9000));
      await waitForLine(run.commands, `START d ${knocker}`);
      assert.deepEqual(knockCommands(run), [`START d ${knocker}`]);
    } finally {
      ip('-n', lab.serverNs, 'addr', 'del', `${added}/24`, 'dev', link.server);
    }
    assert.equal((await run.daemon.stop()).code, 0);
  });

  test('one-time sequences: each used line is marked, the next one is let through over IPv4 and IPv6 without a filter change, the door closes when they are used up', async () => {
    const dir = tempDir('knocktail-ots-');
    const sequences = join(dir, 'sequences.txt');
    writeFileSync(sequences, ' 1001,1002\n 2001:udp,2002\n 3001,3002\n 4001\n');
    const run = await start('', `[ots]\n\tone_time_sequences = ${sequences}\n\tstart_command = echo "START ots %IP%" >> %CMDS%\n`, ['-i', link.server]);
    const server = link.serverIp;
    const capture = await lab.settledCapture(run.daemon.pid);
    /** Sends `packets` and waits for the door to open for `src`: the filter let every line's ports through from the start. */
    const useNext = async (src: string, packets: RawEvent[]): Promise<void> => {
      await lab.send(packets);
      await waitForLine(run.commands, `START ots ${src}`);
    };
    const first = `${link.net4}.100`;
    await lab.send(syn(first, server, 1001, 1002));
    await waitForLine(run.commands, `START ots ${first}`);
    // At once, while the old filter may still be in force: the matcher itself refuses the used sequence.
    const reused = `${link.net4}.101`;
    await lab.send(syn(reused, server, 1001, 1002));
    const second = `${link.net4}.110`;
    await useNext(second, [
      { src: second, dst: server, proto: 'udp', sport: 41000, dport: 2001 },
      { src: second, dst: server, proto: 'tcp', sport: 41001, dport: 2002, flags: 'S' },
    ]);
    const third = `${link.net6}::120`;
    await useNext(third, syn(third, link.serverIp6, 3001, 3002));
    const last = `${link.net4}.130`;
    await useNext(last, syn(last, server, 4001));
    await until(() => readFileSync(sequences, 'utf8').split('\n').filter((line) => line.startsWith('#')).length === 4, () => `four used lines in ${readFileSync(sequences, 'utf8')}`);
    assert.equal(lab.capturePid(run.daemon.pid), capture, 'moving through the file replaced no capture process');
    const afterwards = `${link.net4}.140`;
    await lab.send([...syn(afterwards, server, 4001), ...syn(afterwards, server, 1001, 1002)]);
    await marker(run, link, `${link.net4}.141`);
    assert.deepEqual(knockCommands(run), [first, second, third, last].map((ip) => `START ots ${ip}`).sort(), 'a used sequence never opens again; the used-up door stays shut');
    assert.deepEqual(
      readFileSync(sequences, 'utf8').split('\n').map((line) => line.replace(/\s/g, '')),
      ['#1001,1002', '#2001:udp,2002', '#3001,3002', '#4001', ''],
    );
    assert.equal((await run.daemon.stop()).code, 0);
  });

  test('one-time sequences used back to back: the next line, knocked 0.5 s after the first, opens at once (the filter covered it from the start)', async () => {
    const dir = tempDir('knocktail-ots-');
    const sequences = join(dir, 'sequences.txt');
    writeFileSync(sequences, ' 1001,1002\n 2001,2002\n');
    const run = await start('', `[ots]\n\tone_time_sequences = ${sequences}\n\tseq_timeout = 5\n\tstart_command = echo "START ots %IP%" >> %CMDS%\n`, ['-i', link.server]);
    const knocker = `${link.net4}.150`;
    await lab.send([...syn(knocker, link.serverIp, 1001, 1002), { sleep: 0.5 }, ...syn(knocker, link.serverIp, 2001, 2002)]);
    await marker(run, link, `${link.net4}.151`);
    assert.deepEqual(knockCommands(run), [`START ots ${knocker}`, `START ots ${knocker}`]);
    assert.equal(readFileSync(sequences, 'utf8'), '# 1001,1002\n# 2001,2002\n');
    assert.equal((await run.daemon.stop()).code, 0);
  });

  test('SIGHUP: a door added by the reload opens (the filter follows), a knock in progress on an unchanged door survives it', async () => {
    const doorA = `[A]\n\tsequence = 1000,2000,3000\n\tstart_command = echo "START A %IP%" >> %CMDS%\n`;
    const run = await start('', doorA, ['-i', link.server]);
    const knocker = `${link.net4}.150`;
    await lab.send(syn(knocker, link.serverIp, 1000, 2000));
    await marker(run, link, `${link.net4}.151`);
    const capture = await lab.settledCapture(run.daemon.pid);
    writeFileSync(run.conf, configText(run.dir, '', `${doorA}[B]\n\tsequence = 5000:udp,6000:udp\n\tstart_command = echo "START B %IP%" >> %CMDS%\n`));
    run.daemon.signal('SIGHUP');
    await lab.captureReplaced(run.daemon.pid, capture);
    await lab.send(syn(knocker, link.serverIp, 3000));
    await waitForLine(run.commands, `START A ${knocker}`);
    const newDoor = `${link.net4}.160`;
    await lab.send([
      { src: newDoor, dst: link.serverIp, proto: 'udp', sport: 41000, dport: 5000 },
      { src: newDoor, dst: link.serverIp, proto: 'udp', sport: 41001, dport: 6000 },
    ]);
    await marker(run, link, `${link.net4}.161`);
    assert.deepEqual(knockCommands(run), [`START A ${knocker}`, `START B ${newDoor}`]);
    assert.equal((await run.daemon.stop()).code, 0);
  });

  test('SIGTERM with no packet at all: the daemon exits by itself, its capture processes with it', async () => {
    const run = await start('', twoDoors, ['-i', link.server, '-i', 'lo']);
    // No SIGKILL fallback: a daemon that waits for a packet to stop hangs here until the test's timeout fails it.
    run.daemon.signal('SIGTERM');
    assert.deepEqual(await run.daemon.exited, { code: 0, signal: null });
    assert.deepEqual(lab.serverPids(), [], 'no capture process left behind');
  });
});

describe('pcap mode without the optional pcap module', () => {
  /** A knocktail installation (package.json, dist, formats) whose node_modules has everything but `pcap`, or `pcap` unbuilt. */
  function installation(pcap: 'missing' | 'unbuilt'): string {
    const dir = tempDir('knocktail-nopcap-');
    cpSync(join(repoRoot, 'dist', 'src'), join(dir, 'dist', 'src'), { recursive: true });
    cpSync(join(repoRoot, 'formats'), join(dir, 'formats'), { recursive: true });
    cpSync(join(repoRoot, 'package.json'), join(dir, 'package.json'));
    mkdirSync(join(dir, 'node_modules'));
    for (const name of ['xregexp', '@babel', 'core-js-pure']) symlinkSync(join(repoRoot, 'node_modules', name), join(dir, 'node_modules', name));
    if (pcap === 'unbuilt') {
      const source = join(repoRoot, 'node_modules', 'pcap');
      cpSync(source, join(dir, 'node_modules', 'pcap'), { recursive: true, filter: (path) => !path.startsWith(join(source, 'build')) });
    }
    return dir;
  }

  for (const [state, fix] of [
    ['missing', /fix: apt-get install libpcap-dev && cd \S+ && npm install --no-save pcap@\^3\.1\.0 {3}\(building it needs python3, make, g\+\+\)/],
    ['unbuilt', /fix: apt-get install libpcap-dev && cd \S+ && npm rebuild pcap {3}\(building it needs python3, make, g\+\+\)/],
  ] as const) {
    test(`knocktail -c conf (Mode = pcap) with the module ${state}: exit 1, the exact command that fixes it; file mode still runs`, async () => {
      const dir = installation(state);
      const conf = join(dir, 'pcap.conf');
      writeFileSync(conf, `[options]\n\tMode = pcap\n\tStateDir = ${join(dir, 'state')}\n[d]\n\tsequence = 7000\n\tstart_command = true\n`);
      const cli = join(dir, 'dist', 'src', 'cli.js');
      const result = await runNode([cli, '-c', conf, '-i', 'lo']);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^knocktail: live capture \(Mode = pcap\) needs the optional npm module "pcap", which is missing or failed to build \(/);
      assert.match(result.stderr, fix);
      assert.ok(result.stderr.includes(`cd ${dir} && npm`), result.stderr);
      assert.match(result.stderr, /Reading capture files \(knocktail replay FILE\.pcap\) and following firewall logs \(Mode = file\) work without it\./);
      assert.equal(result.stderr.trim().split('\n').length, 3, `three lines, no stack:\n${result.stderr}`);
      // Replaying a capture file needs no libpcap.
      const replay = await runNode([cli, 'replay', '-c', join(repoRoot, 'fixtures', 'conf', 'manifest.conf'), join(repoRoot, 'fixtures', 'real', 'knocks.pcap')]);
      assert.equal(replay.code, 0, replay.stderr);
      assert.match(replay.stdout, /door S1 opened 4 times for 10\.66\.0\.2 \(4x\)/);
    });
  }
});

/** Runs node with `args` (the CLI of a copied installation, which runCli cannot reach). */
function runNode(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 30_000, env: { ...process.env, TZ: 'UTC' } }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
    );
  });
}
