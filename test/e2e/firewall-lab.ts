/**
 * Real firewall logs for the end-to-end tests: a server and a client namespace (test/inputs/pcap-lab.ts), firewall
 * rules in the server namespace only, and the programs that write firewall logs (rsyslog, ulogd2, journald),
 * started privately by the test (own config, pid and work files under a temporary directory; journald in a mount
 * namespace of its own), stopped by pid, and everything undone afterwards, also after a failure.
 *
 * Kernel LOG lines from a namespace other than the first reach the kernel log only with
 * net.netfilter.nf_log_all_netns=1: it is held at 1 while a test needs it and restored afterwards (holders are
 * recorded per test process, so overlapping runs and a killed run never lose the original value).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliPath, isAlive, needs, sh, tempDir } from '../helpers.js';
import { Daemon, fileLines, Lab, type Link, sleep, until } from '../inputs/pcap-lab.js';

export const LOG_ALL_NETNS = '/proc/sys/net/netfilter/nf_log_all_netns';
/** Who holds nf_log_all_netns at 1 (a file per test process) and the value to restore. */
const LOG_ALL_NETNS_HOLDERS = '/run/knocktail-test-nf_log_all_netns';
/** The plugins of ulogd2's NFLOG → LOGEMU stack, as Debian installs them. */
const ULOGD_PLUGINS = '/usr/lib/x86_64-linux-gnu/ulogd';
export const JOURNALD = ['/lib/systemd/systemd-journald', '/usr/lib/systemd/systemd-journald'].find((path) => existsSync(path)) ?? null;

/**
 * Skip reason of a live firewall test: it needs root, `ip`, the knock client and `tools`; with `kernelLog`, a kernel
 * whose LOG lines can leave a namespace. False when it can run.
 */
export function liveSkip(tools: string[], kernelLog: boolean): string | false {
  return needs({ root: true, tools: ['ip', 'knock', ...tools] })
    || (kernelLog && !existsSync(LOG_ALL_NETNS) ? 'needs net.netfilter.nf_log_all_netns (a kernel with nf_log_syslog)' : false);
}

/** A door of a test config: its start command writes `START <name> <ip>` to the lab's commands file. */
export interface LabDoor {
  name: string;
  sequence: string;
  tcpflags?: string;
}

/**
 * Sets nf_log_all_netns to 1 until the returned function is called. The first holder records the value found, the
 * last one out restores it; holders whose process is gone (a killed run) are swept first.
 */
export function holdLogAllNetns(): () => void {
  mkdirSync(LOG_ALL_NETNS_HOLDERS, { recursive: true, mode: 0o700 });
  const original = join(LOG_ALL_NETNS_HOLDERS, 'original');
  const self = join(LOG_ALL_NETNS_HOLDERS, String(process.pid));
  const holders = () => readdirSync(LOG_ALL_NETNS_HOLDERS).filter((name) => /^\d+$/.test(name));
  for (const holder of holders()) if (!isAlive(Number(holder))) rmSync(join(LOG_ALL_NETNS_HOLDERS, holder), { force: true });
  if (!existsSync(original)) writeFileSync(original, readFileSync(LOG_ALL_NETNS, 'utf8').trim());
  writeFileSync(self, '');
  writeFileSync(LOG_ALL_NETNS, '1');
  return () => {
    rmSync(self, { force: true });
    if (holders().some((holder) => isAlive(Number(holder)))) return;
    writeFileSync(LOG_ALL_NETNS, readFileSync(original, 'utf8'));
    rmSync(LOG_ALL_NETNS_HOLDERS, { recursive: true, force: true });
  };
}

/** Whether a process other than ours holds /proc/kmsg open: two imklog readers would split the kernel's messages between them. */
export function otherKmsgReader(): boolean {
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to look at
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === '/proc/kmsg') return true;
      } catch {
        // closed meanwhile
      }
    }
  }
  return false;
}

export class FirewallLab {
  readonly lab: Lab;
  /** Scratch directory of the run: configs, logs, state. */
  readonly dir = tempDir('knocktail-fwlab-');
  /** A log prefix unique to this run: the kernel log is the whole machine's, other tests' lines never match it. */
  readonly prefix: string;
  link!: Link;
  private readonly undo: Array<() => void | Promise<void>> = [];

  /** `tag`: 3 letters naming the test file (namespaces, interfaces); `second`: the 10.x of its addresses. */
  constructor(tag: string, second: number) {
    this.lab = new Lab(tag, second);
    this.prefix = `${tag.toUpperCase()}${process.pid}`;
  }

  /** The namespaces and one link; with `kernelLog`, LOG lines of the server namespace reach the kernel log. */
  setUp(options: { kernelLog: boolean }): Link {
    this.undo.push(() => this.lab.tearDown());
    this.lab.setUp(1);
    this.link = this.lab.links[0]!;
    if (options.kernelLog) this.undo.push(holdLogAllNetns());
    return this.link;
  }

  /** Undoes everything, newest first; a failing step is reported and the others still run. */
  async tearDown(): Promise<void> {
    for (const step of this.undo.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        process.stderr.write(`cleanup: ${(error as Error).message}\n`);
      }
    }
  }

  /** Runs a command in the server namespace (firewall rules, ufw); throws with its output when it fails. */
  inServer(command: string, ...args: string[]): string {
    return sh('ip', ['netns', 'exec', this.lab.serverNs, command, ...args]);
  }

  /** The stock knock client, from the client namespace. */
  knock(...args: string[]): void {
    this.lab.knock(...args);
  }

  /** A process of the test, stopped (SIGTERM, then SIGKILL) at tearDown. */
  spawn(command: string, args: string[]): Daemon {
    const process = new Daemon(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.undo.push(async () => void (await process.stop()));
    return process;
  }

  /** Where the doors' start commands write (writeConfig). */
  get commands(): string {
    return join(this.dir, 'commands');
  }

  /** The daemon's state directory (writeConfig): its control socket answers `requestStatus`. */
  get stateDir(): string {
    return join(this.dir, 'state');
  }

  /**
   * knocktail's config in the scratch directory: FirewallLog and LogFormat as given (or, with `pcap`, Mode = pcap
   * on that interface), StateDir and LogFile in the scratch directory, with `prefixFormat` the README's
   * `--log-prefix` recipe for this run's prefix as format `knock`, the doors, and `sections` (door sections as
   * written). Returns its path.
   */
  writeConfig(options: { firewallLog?: string; logFormat?: string; pcap?: string; prefixFormat?: boolean; doors: LabDoor[]; sections?: string }): string {
    const conf = join(this.dir, 'knocktail.conf');
    const recipe = options.prefixFormat ? ['<logformat knock>', `  required = {{kernel}}${this.prefix} {{netfilter}}`, '</logformat>'] : [];
    const doors = options.doors.flatMap((door) => [
      `[${door.name}]`,
      `  sequence = ${door.sequence}`,
      ...(door.tcpflags ? [`  tcpflags = ${door.tcpflags}`] : []),
      `  start_command = echo "START ${door.name} %IP%" >> ${this.commands}`,
    ]);
    const input = options.pcap !== undefined
      ? ['  Mode = pcap', `  Interface = ${options.pcap}`]
      : [`  FirewallLog = ${options.firewallLog}`, `  LogFormat = ${options.logFormat}`];
    writeFileSync(conf, [
      '[options]',
      ...input,
      `  StateDir = ${this.stateDir}`,
      `  LogFile = ${join(this.dir, 'knocktail.log')}`,
      ...recipe,
      ...doors,
      options.sections ?? '',
    ].join('\n'));
    return conf;
  }

  /**
   * A LOG rule with this run's prefix in the server namespace for TCP SYNs (or UDP) to `ports` (`LOW:HIGH`); with
   * `limit`, the README's per-source rate limit (hashlimit `name`, so many per second, burst).
   */
  logPorts(ports: string, options: { proto?: 'tcp' | 'udp'; limit?: { name: string; perSecond: number; burst: number } } = {}): void {
    const packets = options.proto === 'udp' ? ['-p', 'udp'] : ['-p', 'tcp', '--syn'];
    const limit = options.limit === undefined ? [] : [
      '-m', 'hashlimit', '--hashlimit-name', options.limit.name, '--hashlimit-mode', 'srcip',
      '--hashlimit-upto', `${options.limit.perSecond}/second`, '--hashlimit-burst', String(options.limit.burst),
    ];
    this.inServer('iptables', '-A', 'INPUT', ...packets, '--dport', ports, ...limit, '-j', 'LOG', '--log-prefix', `${this.prefix} `);
  }

  /**
   * Waits until `source` may send `packets` more in the hashlimit `name` of the server namespace without any being
   * held back (its entry has the credit, or is gone, which starts it with the whole burst).
   */
  async rateLimitAllows(name: string, source: string, packets: number): Promise<void> {
    // Lines: `EXPIRES SRC:PORT->DST:PORT CREDIT CREDIT_CAP COST`, the credit brought up to date as it is read.
    const entry = () => this.inServer('cat', `/proc/net/ipt_hashlimit/${name}`).split('\n').find((line) => line.split(' ')[1]?.startsWith(`${source}:`));
    await until(() => {
      const fields = entry()?.split(' ').map(Number);
      return fields === undefined || fields[2]! >= packets * fields[4]!;
    }, () => `credit for ${packets} packets from ${source} in hashlimit ${name}: ${entry()}`);
  }

  /** A step for tearDown (run before the steps already registered). */
  onTearDown(step: () => void | Promise<void>): void {
    this.undo.push(step);
  }

  /** Stops the daemon, which must exit 0 by itself, and returns the doors' command lines, sorted. */
  async stopped(daemon: Daemon): Promise<string[]> {
    const exit = await daemon.stop();
    if (exit.code !== 0) throw new Error(`knocktail exited ${JSON.stringify(exit)}:\n${daemon.output}`);
    return fileLines(this.commands).sort();
  }

  /** knocktail (`-c conf -v`), started through `via` (e.g. nsenter) when given; resolves once it listens. */
  async daemon(conf: string, via: string[] = []): Promise<Daemon> {
    const command = via.length > 0 ? via[0]! : process.execPath;
    const args = via.length > 0 ? [...via.slice(1), process.execPath, cliPath, '-c', conf, '-v'] : [cliPath, '-c', conf, '-v'];
    const daemon = this.spawn(command, args);
    await daemon.waitForOutput('listening on');
    return daemon;
  }

  /**
   * rsyslog as Debian runs it (imklog, kern.* to a file in the RFC 3339 format), but private: no /dev/log, no
   * system pid file. imklog reads /proc/kmsg, which hands each message to one reader only: when the host's syslog
   * already reads it, imkmsg (its own /dev/kmsg cursor) takes its place. Returns the pid file (for logrotate's HUP).
   */
  startRsyslog(kernLog: string): { pidFile: string; process: Daemon } {
    const input = otherKmsgReader() ? 'module(load="imkmsg")' : 'module(load="imklog" permitnonkernelfacility="off")';
    return this.rsyslog('rsyslog', { lines: [input, `kern.* action(type="omfile" file="${kernLog}")`] });
  }

  /**
   * A private rsyslogd in the foreground with its own config, pid file and work directory (`name` under the scratch
   * directory): `global` adds parameters to its global() object, `lines` follow it; in namespace `ns` when given.
   */
  rsyslog(name: string, config: { global?: string; lines: string[]; ns?: string }): { pidFile: string; process: Daemon } {
    const work = join(this.dir, name);
    mkdirSync(work, { recursive: true });
    const conf = join(work, 'rsyslog.conf');
    const pidFile = join(work, 'rsyslogd.pid');
    writeFileSync(conf, [`global(workDirectory="${work}"${config.global === undefined ? '' : ` ${config.global}`})`, ...config.lines, ''].join('\n'));
    const args = ['-n', '-f', conf, '-i', pidFile];
    return { pidFile, process: config.ns === undefined ? this.spawn('rsyslogd', args) : this.spawn('ip', ['netns', 'exec', config.ns, 'rsyslogd', ...args]) };
  }

  /**
   * ulogd2 in the server namespace: NFLOG group `group` through BASE, IFINDEX, IP2STR and PRINTPKT to a LOGEMU file
   * (sync=1, as README.md advises), the stack of fixtures/real/scripts/ulogd-fx.conf.
   */
  startUlogd(group: number, logemu: string): Daemon {
    const work = join(this.dir, 'ulogd');
    mkdirSync(work, { recursive: true });
    const conf = join(work, 'ulogd.conf');
    const plugins = ['inppkt_NFLOG', 'raw2packet_BASE', 'filter_IFINDEX', 'filter_IP2STR', 'filter_PRINTPKT', 'output_LOGEMU'];
    writeFileSync(conf, [
      '[global]',
      `logfile="${join(work, 'ulogd.log')}"`,
      'loglevel=3',
      ...plugins.map((plugin) => `plugin="${ULOGD_PLUGINS}/ulogd_${plugin}.so"`),
      'stack=log1:NFLOG,base1:BASE,ifi1:IFINDEX,ip2str1:IP2STR,print1:PRINTPKT,emu1:LOGEMU',
      '[log1]',
      `group=${group}`,
      '[emu1]',
      `file="${logemu}"`,
      'sync=1',
      '',
    ].join('\n'));
    return this.spawn('ip', ['netns', 'exec', this.lab.serverNs, 'ulogd', '-c', conf, '-p', join(work, 'ulogd.pid')]);
  }

  /**
   * systemd-journald in a mount namespace of its own: tmpfs over /run (its sockets, /run/log/journal) and over
   * /var/log/journal when there is one, so the host's journal and sockets are never touched and everything goes
   * when it stops. It reads the kernel's messages from /dev/kmsg. Returns the process and the command prefix that
   * runs a program in its namespace (`nsenter --mount=…`), where journalctl sees this journal only.
   */
  async startJournald(): Promise<{ process: Daemon; via: string[] }> {
    const script = 'mount -t tmpfs knocktail-test /run && mkdir -p /run/systemd /run/log'
      + ' && { [ ! -d /var/log/journal ] || mount -t tmpfs knocktail-test /var/log/journal; } && exec "$0"';
    const journald = this.spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, JOURNALD!]);
    const via = ['nsenter', `--mount=/proc/${journald.pid}/ns/mnt`, '--'];
    // Running once journalctl finds its journal with the kernel's messages in it.
    await until(
      () => !journald.running || spawnSync(via[0]!, [...via.slice(1), 'journalctl', '--dmesg', '--lines=1', '--quiet', '--no-pager'], { encoding: 'utf8' }).stdout.trim() !== '',
      () => `journald's journal (output: ${journald.output})`,
    );
    if (!journald.running) throw new Error(`systemd-journald exited: ${journald.output}`);
    return { process: journald, via };
  }

  /**
   * ufw, acting only inside the server namespace (`ip netns exec`) and on copies of its configuration: its files
   * (/etc/ufw, /etc/default/ufw, /lib/ufw) are bind-mounted from copies under the scratch directory in a mount
   * namespace of each call, so `ufw enable` and `ufw logging` change nothing on the host; its sysctl file is
   * emptied (the copy), so it sets no kernel value either. Returns a function that runs `ufw ARGS`.
   */
  ufw(): (...args: string[]) => string {
    const copies = join(this.dir, 'ufw');
    mkdirSync(copies, { recursive: true });
    const files: Array<[string, string]> = [['/etc/ufw', 'etc-ufw'], ['/etc/default/ufw', 'default-ufw'], ['/lib/ufw', 'lib-ufw']];
    for (const [original, copy] of files) sh('cp', ['-a', original, join(copies, copy)]);
    writeFileSync(join(copies, 'etc-ufw', 'sysctl.conf'), '');
    const mounts = files.map(([original], i) => `mount --bind "$${i + 1}" ${original}`).join(' && ');
    const script = `${mounts} && ns=$4 && shift 4 && exec ip netns exec "$ns" ufw "$@"`;
    return (...args) => sh('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...files.map(([, copy]) => join(copies, copy)), this.lab.serverNs, ...args]);
  }
}

/** Calls `probe` every half second until `file` holds `text` (a logger that started writes what it is sent). */
export async function untilLogged(file: string, text: string, probe: () => void, describe: () => string): Promise<void> {
  const logged = () => existsSync(file) && readFileSync(file, 'utf8').includes(text);
  for (let attempt = 0; !logged(); attempt++) {
    if (attempt === 60) throw new Error(`"${text}" never reached ${file}: ${describe()}`);
    probe();
    await sleep(500);
  }
}
