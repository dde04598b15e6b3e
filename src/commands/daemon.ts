/** `knocktail [options]`: the daemon, with knockd's flags. */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../config/types.js';
import { Daemon, type DaemonFlags } from '../daemon/daemon.js';
import { VERSION } from '../version.js';
import { DEFAULT_CONFIG, EXIT, parseCommandLine } from './common.js';

export const USAGE = `usage: knocktail [options]                 run the daemon
       knocktail replay [options] FILE…      what the doors would have done for archived logs
       knocktail check-config [-c FILE]      parse a config and explain every door
       knocktail test-format [options] FILE  try a log format against a log file
       knocktail status [-c FILE] [--json]   what the running daemon is doing
       knocktail knock [options] HOST PORT…  knock (knockd's knock client; -c FILE HOST DOOR: a door's sequence)
       knocktail sequence -c FILE DOOR       a rolling door's sequence now and next

daemon options (knockd's, same meaning):
  -c, --config FILE     config file (default ${DEFAULT_CONFIG}; knockd.conf files work unchanged)
  -i, --interface IF    pcap mode: capture on IF (repeat for several; wins over Interface =)
  -d, --daemon          detach into the background and write the pid file
  -v, --verbose         print every log message on stdout too
  -D, --debug           print debug lines (config, every knock hit) on stdout
  -l, --lookup          show the knocker's reverse-DNS name in log lines
  -p, --pidfile FILE    pid file for -d (default /run/knocktail.pid; PidFile = in the config wins)
  -g, --logfile FILE    log file (LogFile = in the config wins, as in knockd)
  -4, --only-ip-v4      ignore IPv6 knocks
  -V, --version         print the version
  -h, --help            print this help
knocktail options:
      --from-end        file mode: start at the end of each log, not where the last run stopped

Signals: HUP reloads the config and re-opens the log file (a broken config is reported, the old
one stays); TERM/INT stop (pending stop commands stay recorded for the next start, or run now with
CloseOnExit = yes); a second TERM/INT stops at once.
Run "knocktail COMMAND --help" for a command's options.
Exit status: 0 stopped normally (TERM/INT), 1 could not start (bad config, unreadable input, state
directory in use, OnStart failed) or stopped by an error or a second signal, 2 bad command line.`;

const DEFAULT_PIDFILE = '/run/knocktail.pid';
/** Set in the environment of the background process `-d` starts. */
const DETACHED = 'KNOCKTAIL_DETACHED';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(
    argv,
    {
      config: { type: 'string', short: 'c', default: DEFAULT_CONFIG },
      interface: { type: 'string', short: 'i', multiple: true, default: [] },
      daemon: { type: 'boolean', short: 'd', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
      debug: { type: 'boolean', short: 'D', default: false },
      lookup: { type: 'boolean', short: 'l', default: false },
      pidfile: { type: 'string', short: 'p' },
      logfile: { type: 'string', short: 'g' },
      'only-ip-v4': { type: 'boolean', short: '4', default: false },
      'from-end': { type: 'boolean', default: false },
      version: { type: 'boolean', short: 'V', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (values.version) {
    process.stdout.write(`knocktail ${VERSION}\n`);
    return EXIT.ok;
  }
  const flags: DaemonFlags = {
    configPath: resolve(values.config),
    interfaces: values.interface.flatMap((i) => i.split(',')).map((i) => i.trim()).filter((i) => i !== ''),
    verbose: values.verbose,
    debug: values.debug,
    lookup: values.lookup,
    pidFile: values.pidfile === undefined ? null : resolve(values.pidfile),
    logFile: values.logfile === undefined ? null : resolve(values.logfile),
    ipv4Only: values['only-ip-v4'],
    fromEnd: values['from-end'],
  };
  if (values.daemon && process.env[DETACHED] === undefined) return detach(argv);

  // Installed before start-up: a HUP from logrotate or a TERM while starting must not kill the process
  // half-way; they take effect once the daemon runs.
  let daemon: Daemon | null = null;
  let stopRequested = false;
  let reloadRequested = false;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolveFinished) => (finish = resolveFinished));
  let pidFile: string | null = null;
  const removePidFile = (): void => {
    if (pidFile !== null) rmSync(pidFile, { force: true });
  };
  const stop = (): void => {
    if (daemon === null) {
      stopRequested = true;
      return;
    }
    if (stopRequested) {
      daemon.warn('second signal: stopping at once; pending stop commands stay recorded for the next start');
      removePidFile();
      process.exit(EXIT.failure);
    }
    stopRequested = true;
    daemon.stop().then(
      () => {
        removePidFile();
        finish(EXIT.ok);
      },
      (error: unknown) => {
        process.stderr.write(`knocktail: ${(error as Error).message}\n`);
        removePidFile();
        finish(EXIT.failure);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => {
    if (daemon === null) reloadRequested = true;
    else void daemon.reload();
  });

  try {
    daemon = await Daemon.start(flags);
  } catch (error) {
    const message = error instanceof ConfigError ? error.message : `knocktail: ${(error as Error).message}`;
    process.stderr.write(`${message}\n`);
    tellParent({ error: message });
    return EXIT.failure;
  }
  const running = daemon;
  process.on('uncaughtException', (error) => {
    running.fatal(error);
    removePidFile();
    process.exit(EXIT.failure);
  });
  if (process.env[DETACHED] !== undefined) {
    const path = running.pidFile() ?? flags.pidFile ?? DEFAULT_PIDFILE;
    try {
      writeFileSync(path, `${process.pid}\n`);
      pidFile = path;
    } catch (error) {
      const message = `knocktail: could not create pid file ${path}: ${(error as Error).message}`;
      running.warn(message);
      tellParent({ error: message });
      await running.stop();
      return EXIT.failure;
    }
  }
  tellParent({ ready: true });
  notifySystemd(running);
  if (stopRequested) {
    stopRequested = false;
    stop();
  } else if (reloadRequested) {
    void running.reload();
  }
  // Exit explicitly: a command left running at shutdown must not hold the process through its pipes.
  return finished.then((code) => process.exit(code));
}

/**
 * Type=notify: tell systemd the daemon is ready. Node cannot write to a datagram socket, so the
 * systemd-notify binary does (the unit needs NotifyAccess=all). Commands must not speak for the
 * service, so NOTIFY_SOCKET is taken out of the environment they inherit.
 */
function notifySystemd(daemon: Daemon): void {
  const socket = process.env.NOTIFY_SOCKET;
  if (socket === undefined) return;
  delete process.env.NOTIFY_SOCKET;
  const failed = (why: string): void => daemon.warn(`cannot tell systemd that knocktail is ready (systemd-notify ${why}); use Type=simple in the unit instead`);
  const child = spawn('systemd-notify', ['--ready', `--status=listening on ${daemon.listeningOn()}`], {
    stdio: 'ignore',
    env: { ...process.env, NOTIFY_SOCKET: socket },
  });
  child.on('error', (error) => failed(error.message));
  child.on('exit', (code) => {
    if (code !== 0) failed(`exited with status ${code}`);
  });
}

type StartReport = { ready: true } | { error: string };

/** In the background process of -d: report start-up to the waiting parent, then cut the tie. */
function tellParent(report: StartReport): void {
  if (process.env[DETACHED] === undefined || process.send === undefined) return;
  process.send(report);
  process.disconnect();
}

/**
 * -d: Node cannot fork, so start the same command again detached (stdio to /dev/null, cwd /, as
 * daemon(0,0) does) and return once it reports that it runs, or print why it did not start.
 */
async function detach(argv: string[]): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...argv], {
    detached: true,
    cwd: '/',
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    env: { ...process.env, [DETACHED]: '1' },
  });
  const report = await new Promise<StartReport>((resolveReport) => {
    child.once('message', (message) => resolveReport(message as StartReport));
    child.once('exit', (code) => resolveReport({ error: `knocktail: the background daemon exited during start-up (status ${code})` }));
  });
  if ('error' in report) {
    process.stderr.write(`${report.error}\n`);
    return EXIT.failure;
  }
  child.unref();
  return EXIT.ok;
}
