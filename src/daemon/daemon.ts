/**
 * The daemon: a driver of the engine (docs/design.md). It feeds the configured live inputs into the engine with
 * the wall clock, keeps pending stops durable in the state directory, logs the way knockd does, answers
 * `knocktail status` on the control socket, and handles reload and shutdown.
 *
 * Start-up order: config → log → state directory (one daemon per StateDir, enforced by the control socket) →
 * pending stops read back → OnStart → pending stops re-armed (overdue ones run at once) → inputs → clock. The pid
 * file and readiness reports are the command line's (commands/daemon.ts).
 */
import { join } from 'node:path';
import { type Clock, SystemClock } from '../actions/clock.js';
import { FileStopStore } from '../actions/file-stop-store.js';
import { type CommandResult, type CommandRunner, commandFailed, describeOutcome, ShellRunner } from '../actions/runner.js';
import { debugConfigLines } from '../config/explain.js';
import { loadConfig } from '../config/parse.js';
import { type Config, ConfigError, formatDiagnostic, type Options, type SourceRef } from '../config/types.js';
import { Engine } from '../engine/engine.js';
import type { CompiledFormat } from '../formats/logformat.js';
import { type DecoderCounters, resolveFormats } from '../formats/registry.js';
import { captureInterfaces, createInputs } from '../inputs/factory.js';
import type { HitSink, Input } from '../inputs/input.js';
import { Logger, type LoggerOptions } from '../logging.js';
import { FileUsedKnocks, USED_KNOCKS_FILE } from '../knocks/used.js';
import { DiskOneTimeFiles } from '../matcher/one-time-files.js';
import { VERSION } from '../version.js';
import type { Watch } from '../watch.js';
import { ControlServer, type DaemonStatus } from './control.js';
import { countEvent, emptyEventCounters } from './counters.js';
import { preflight } from './preflight.js';
import { LossWarnings } from './loss-warnings.js';
import { prepareStateDirectory, UNMARKED_FILE } from './state-dir.js';

/** Command-line settings (knockd's flags and ours). */
export interface DaemonFlags {
  configPath: string;
  /** -i (repeatable): wins over `Interface =`. */
  interfaces: string[];
  verbose: boolean;
  debug: boolean;
  lookup: boolean;
  /** -p: the config's PidFile wins (knockd). */
  pidFile: string | null;
  /** -g: the config's LogFile wins (knockd). */
  logFile: string | null;
  ipv4Only: boolean;
  fromEnd: boolean;
  /** --allow-unsafe-config: accept a config others could change (see preflight.ts). */
  allowUnsafeConfig?: boolean;
}

/** What tests may replace. */
export interface DaemonServices {
  clock?: Clock;
  runner?: CommandRunner;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

/** How often input positions are saved besides before every open (a crash re-reads at most this much), and losses checked. */
const PERSIST_EVERY_MS = 5000;

/** At shutdown, how long running commands are waited for; longer ones are left running (and reported). */
const SHUTDOWN_WAIT_MS = 5000;

/** Options that apply only at start-up: a reload that changes them keeps the running value (and says so). */
const RESTART_ONLY: ReadonlyArray<readonly [keyof Options, string]> = [
  ['mode', 'Mode'],
  ['stateDir', 'StateDir'],
  ['maxSources', 'MaxSources'],
  ['pidFile', 'PidFile'],
];

/** A config the daemon can run, with its log formats compiled (file mode). */
interface Usable {
  config: Config;
  formats: readonly CompiledFormat[];
}

export class Daemon {
  private config: Config;
  private formats: readonly CompiledFormat[];
  /** What the inputs depend on besides their id; inputs are kept across a reload only while it is unchanged. */
  private inputDefinition: string;
  private readonly clock: Clock;
  private readonly runner: CommandRunner;
  private readonly engine: Engine;
  private inputs: Input[] = [];
  /** pcap mode: the capture interfaces' addresses (doors without Target accept these destinations). */
  private localAddresses: ReadonlySet<string> = new Set();
  private persistTimer: NodeJS.Timeout | null = null;
  private readonly lossWarnings = new LossWarnings();
  private state: DaemonStatus['state'] = 'starting';
  private readonly startedAt: number;
  private onStartRan = false;
  private reloading: Promise<boolean> = Promise.resolve(true);
  private stopping: Promise<void> | null = null;
  private readonly counters = emptyEventCounters();
  private reloads = 0;
  private failedReloads = 0;

  private constructor(
    private readonly flags: DaemonFlags,
    usable: Usable,
    private readonly logger: Logger,
    private readonly store: FileStopStore,
    usedKnocks: FileUsedKnocks,
    private readonly control: ControlServer,
    services: DaemonServices,
  ) {
    this.config = usable.config;
    this.formats = usable.formats;
    this.inputDefinition = inputDefinition(usable);
    this.clock = services.clock ?? new SystemClock();
    this.runner = services.runner ?? new ShellRunner();
    this.startedAt = this.clock.now();
    const { options } = usable.config;
    this.engine = new Engine(usable.config, {
      time: { kind: 'live', clock: this.clock, caughtUp: () => this.inputs.every((input) => input.caughtUp?.() ?? true) },
      runner: this.runner,
      store,
      oneTimeFiles: new DiskOneTimeFiles(join(options.stateDir, UNMARKED_FILE), (message) => this.warn(message)),
      usedKnocks,
      // File mode: the firewall's LOG rule already decided which packets are for this host.
      isLocal: options.mode === 'pcap' ? (dst) => this.localAddresses.has(dst) : null,
      sinks: [(event) => this.logger.event(event), (event) => countEvent(this.counters, event)],
      onWarning: (message) => this.warn(message),
      // Saved before the start command runs: after a crash the log is not read again up to this knock.
      beforeCommands: (input) => this.persistPosition(input),
      onWatchChanged: (watch) => this.updateWatch(watch),
    });
  }

  /**
   * Loads the config and starts everything. Throws ConfigError (file:line) or Error (state directory in
   * use or unsafe, OnStart failed, an input cannot start) when it cannot; nothing is left running then.
   */
  static async start(flags: DaemonFlags, services: DaemonServices = {}): Promise<Daemon> {
    const usable = loadUsable(flags);
    const logger = new Logger(loggerOptions(flags, usable.config, services));
    let control: ControlServer | null = null;
    let store: FileStopStore;
    let usedKnocks: FileUsedKnocks;
    try {
      const { config } = usable;
      const stateDir = config.options.stateDir;
      prepareStateDirectory(stateDir, config.optionsAt.stateDir ?? { file: config.path, line: 0 });
      control = await ControlServer.listen(stateDir);
      // A table others could edit would let used rolling sequences and encrypted messages open again: refuse to start.
      usedKnocks = new FileUsedKnocks(join(stateDir, USED_KNOCKS_FILE), (services.clock ?? new SystemClock()).now(), (message) => logger.error(`warning: ${message}`));
      store = new FileStopStore(stateDir, (message) => logger.error(`warning: ${message}`));
    } catch (error) {
      control?.close();
      logger.log(`cannot start: ${(error as Error).message}`);
      logger.close();
      throw error;
    }
    const daemon = new Daemon(flags, usable, logger, store, usedKnocks, control, services);
    control.serve(() => daemon.status());
    try {
      await daemon.startUp();
    } catch (error) {
      logger.log(`cannot start: ${(error as Error).message}`);
      await daemon.shutDown(false);
      throw error;
    }
    return daemon;
  }

  private async startUp(): Promise<void> {
    const { config, logger } = this;
    for (const line of debugConfigLines(config)) logger.debug(line);
    for (const warning of config.warnings) logger.error(`warning: ${formatDiagnostic(warning)}`);
    const onStart = await this.runHook('OnStart', config.options.onStartCommand);
    if (onStart !== null && commandFailed(onStart)) {
      throw new Error(`${where(config.optionsAt.onStartCommand)}the OnStart command failed (${describeOutcome(onStart)}), so nothing was started; fix it and start again`);
    }
    this.onStartRan = true;
    this.restorePendingStops();
    for (const input of await this.createInputs(this.config, this.formats)) {
      await input.start(this.hit);
      this.inputs.push(input);
    }
    logger.startingUp(this.listeningOn());
    this.persistTimer = setInterval(() => {
      for (const input of this.inputs) input.persist?.();
      for (const message of this.lossWarnings.check(this.inputs, this.clock.now())) this.warn(message);
    }, PERSIST_EVERY_MS);
    this.engine.start();
    this.state = 'running';
  }

  /** Re-arms the stops the state directory kept: overdue ones run now, the others at their time. */
  private restorePendingStops(): void {
    const stops = this.engine.restoreStops();
    if (stops.length === 0) return;
    const now = this.clock.now();
    const overdue = stops.filter((stop) => stop.due <= now).length;
    const later = stops.length - overdue;
    this.logger.log(
      `pending stop commands from the last run: ${overdue} overdue (running now), ${later} re-armed` +
        (later > 0 ? ` (next at ${new Date(stops[overdue]!.due).toISOString()})` : ''),
    );
  }

  private createInputs(config: Config, formats: readonly CompiledFormat[]): Promise<Input[]> {
    return createInputs({
      config,
      formats,
      watch: this.engine.watch(),
      interfaces: this.flags.interfaces,
      fromEnd: this.flags.fromEnd,
      ipv4Only: this.flags.ipv4Only,
      onWarning: (message) => this.warn(message),
      onInfo: (message) => this.logger.log(message),
      onLocalAddresses: (addresses) => {
        this.localAddresses = addresses;
      },
    });
  }

  /** Where what this daemon reads is named (file mode: the logs; pcap mode: the interfaces). */
  listeningOn(): string {
    const { options } = this.config;
    if (options.mode === 'file') return options.firewallLogs.join(',');
    return captureInterfaces(this.config, this.flags.interfaces).join(',');
  }

  /** The config's PidFile (knockd: it wins over -p). */
  pidFile(): string | null {
    return this.config.options.pidFile;
  }

  /** A problem worth the operator's attention that does not stop anything (stderr and the log). */
  warn(message: string): void {
    this.logger.error(`warning: ${message}`);
  }

  /** The process is about to die of an error: say so in the log too (pending stops stay recorded). */
  fatal(error: Error): void {
    this.logger.error(`fatal: ${error.stack ?? error.message}\nknocktail stops; pending stop commands stay recorded in ${this.config.options.stateDir} and run at the next start`);
    this.logger.close();
  }

  /** Every input's sink. */
  private readonly hit: HitSink = (hit) => {
    // -4 (knockd --only-ip-v4): IPv6 knocks do not exist for the doors.
    if (this.flags.ipv4Only && hit.src.includes(':')) return;
    if (this.logger.debugging) this.logger.debugHit(hit);
    this.engine.hit(hit);
  };

  private persistPosition(inputId: string): void {
    const input = this.inputs.find((candidate) => candidate.id === inputId || candidate.covers?.(inputId));
    if (input !== undefined) input.persist?.(inputId);
    else for (const other of this.inputs) other.persist?.();
  }

  private updateWatch(watch: Watch): void {
    for (const input of this.inputs) void input.updateWatch?.(watch);
  }

  /** Runs OnStart/OnStop (null: none configured); its output and exit are logged. */
  private async runHook(hook: 'OnStart' | 'OnStop', command: string | null): Promise<CommandResult | null> {
    if (command === null || command === '') return null;
    this.logger.log(`${hook}: running command: ${command}`);
    const result = await this.runner.run(command, { KNOCK_ACTION: hook.toLowerCase() }, this.config.options.commandLimit * 1000);
    this.counters.commandsRun++;
    if (commandFailed(result)) this.counters.commandsFailed++;
    this.logger.commandOutcome(hook, result);
    return result;
  }

  /**
   * SIGHUP: re-read the config. A broken one is reported with file:line and the daemon keeps the old
   * one (knockd dies). Knocks in progress on unchanged doors survive; inputs whose definition did not
   * change keep running untouched; added and removed FirewallLog entries start and stop inputs; the
   * log file is re-opened either way (logrotate). Reloads run one at a time.
   */
  reload(): Promise<boolean> {
    this.reloading = this.reloading
      .then(() => this.reloadNow())
      .catch((error: unknown) => {
        // Never fatal: whatever failed, the daemon goes on with what it has.
        this.failedReloads++;
        this.logger.error(`error: reload failed: ${(error as Error).message}`);
        return false;
      });
    return this.reloading;
  }

  private async reloadNow(): Promise<boolean> {
    if (this.state !== 'running') return false;
    const path = this.flags.configPath;
    this.logger.log(`re-reading config file: ${path}`);
    let loaded: Usable;
    let next: Input[];
    try {
      loaded = loadUsable(this.flags);
      // Built before anything changes: an input the new config cannot have leaves the daemon as it was.
      next = await this.createInputs(this.keepRestartOnlyOptions(loaded.config, false), loaded.formats);
    } catch (error) {
      this.logger.reopen();
      this.failedReloads++;
      this.logger.error(`${(error as Error).message}\nreload failed: still running with the previous config`);
      return false;
    }
    this.logger.reopen(loggerOptions(this.flags, loaded.config, {}));
    const config = this.keepRestartOnlyOptions(loaded.config, true);
    this.config = config;
    this.formats = loaded.formats;
    for (const warning of config.warnings) this.logger.error(`warning: ${formatDiagnostic(warning)}`);
    this.engine.reload(config);
    await this.reconcileInputs({ config, formats: loaded.formats }, next);
    this.updateWatch(this.engine.watch());
    this.reloads++;
    this.logger.log(`config reloaded, listening on ${this.listeningOn()}`);
    return true;
  }

  /** A reload cannot move the state directory, switch modes, resize the matcher or move the pid file. */
  private keepRestartOnlyOptions(config: Config, say: boolean): Config {
    const options = { ...config.options };
    for (const [key, directive] of RESTART_ONLY) {
      const running = this.config.options[key];
      if (options[key] === running) continue;
      if (say) this.warn(`${where(config.optionsAt[key])}${directive} changed; knocktail keeps ${JSON.stringify(running)} until it is restarted`);
      Object.assign(options, { [key]: running });
    }
    return { ...config, options };
  }

  /** Keeps the inputs the new config still defines the same way, stops the others and starts the new ones. */
  private async reconcileInputs(usable: Usable, next: Input[]): Promise<void> {
    const definition = inputDefinition(usable);
    const unchanged = definition === this.inputDefinition;
    this.inputDefinition = definition;
    const running = new Map(this.inputs.map((input) => [input.id, input]));
    const kept: Input[] = [];
    const added: Input[] = [];
    for (const input of next) {
      const old = unchanged ? running.get(input.id) : undefined;
      if (old === undefined) {
        added.push(input);
      } else {
        running.delete(input.id);
        old.updateOptions?.(usable.config.options);
        kept.push(old);
      }
    }
    // Stopped first: a replaced follower saves its position, and its successor resumes from there.
    for (const old of running.values()) {
      await this.stopInput(old);
      this.logger.log(`stopped reading ${old.id}`);
    }
    this.inputs = kept;
    for (const input of added) {
      try {
        await input.start(this.hit);
        this.inputs.push(input);
        this.logger.log(`reading ${input.id}`);
      } catch (error) {
        this.logger.error(`error: ${input.id}: cannot start: ${(error as Error).message}; fix it and reload`);
      }
    }
  }

  private async stopInput(input: Input): Promise<void> {
    try {
      await input.stop();
    } catch (error) {
      this.logger.error(`error: ${input.id}: stopping failed: ${(error as Error).message}`);
    }
  }

  /**
   * SIGTERM/SIGINT: stop reading; pending stops stay recorded for the next start (or, with
   * CloseOnExit, run now); running commands get SHUTDOWN_WAIT_MS; then OnStop.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutDown(true);
    return this.stopping;
  }

  private async shutDown(runOnStop: boolean): Promise<void> {
    this.state = 'stopping';
    // A reload under way finishes first, so every input it started is in the list stopped below.
    await this.reloading;
    if (this.persistTimer !== null) clearInterval(this.persistTimer);
    this.persistTimer = null;
    for (const input of this.inputs) await this.stopInput(input);
    this.inputs = [];
    this.engine.release(this.config.options.closeOnExit && this.onStartRan);
    await this.waitForCommands();
    if (runOnStop && this.onStartRan) await this.runHook('OnStop', this.config.options.onStopCommand);
    this.control.close();
    this.store.close();
    this.logger.log('shutting down');
    this.logger.close();
  }

  private async waitForCommands(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      this.engine.settled().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), SHUTDOWN_WAIT_MS))),
    ]);
    clearTimeout(timer);
    if (finished) return;
    for (const command of this.engine.runningCommands()) {
      const next = command.action === 'start' ? 'its stop command is recorded and runs at the next start' : 'it runs again at the next start';
      this.warn(`${command.door}: ${command.action} command for ${command.ip} still running after ${SHUTDOWN_WAIT_MS / 1000} s, left running (${next}): ${command.command}`);
    }
  }

  status(): DaemonStatus {
    const { matcher } = this.engine.status();
    // Every input's losses, also for inputs that do not list them in their own status (capture).
    const inputs = this.inputs.map((input) => {
      const status = input.status();
      return status.lost === undefined && input.lost !== undefined ? { ...status, lost: input.lost() } : status;
    });
    let linesRead = 0;
    let linesMatched = 0;
    for (const input of inputs) {
      const decoder = input.decoder as Partial<DecoderCounters> | undefined;
      linesRead += decoder?.lines ?? 0;
      linesMatched += decoder?.matched ?? 0;
    }
    const { options } = this.config;
    return {
      knocktail: VERSION,
      pid: process.pid,
      state: this.state,
      startedAt: this.startedAt,
      now: this.clock.now(),
      config: this.config.path,
      mode: options.mode,
      stateDir: options.stateDir,
      open: this.engine.pendingStops().map((stop) => ({
        door: stop.door,
        ip: stop.ip,
        ...(stop.firewall === undefined ? {} : { firewall: stop.firewall }),
        openedAt: stop.openedAt,
        closesAt: stop.due,
        stopCommand: stop.command,
      })),
      running: this.engine.runningCommands(),
      attempts: { count: matcher.attempts, sources: matcher.sources, oldest: matcher.inProgress[0] ?? null },
      inputs,
      counters: { ...matcher.counters, ...this.counters, linesRead, linesMatched, reloads: this.reloads, failedReloads: this.failedReloads },
      memory: { rss: process.memoryUsage.rss(), heapUsed: process.memoryUsage().heapUsed },
    };
  }
}

function loggerOptions(flags: DaemonFlags, config: Config, services: DaemonServices): LoggerOptions {
  return {
    // knockd: the config's LogFile overrides -g.
    logFile: config.options.logFile ?? flags.logFile,
    useSyslog: config.options.useSyslog,
    verbose: flags.verbose,
    debug: flags.debug,
    lookup: flags.lookup,
    ...(services.stdout === undefined ? {} : { stdout: services.stdout }),
    ...(services.stderr === undefined ? {} : { stderr: services.stderr }),
  };
}

/** A config the daemon can run: parsed, its formats compiled, its preflight passed (throws ConfigError otherwise). */
function loadUsable(flags: DaemonFlags): Usable {
  const config = loadConfig(flags.configPath);
  const formats = config.options.mode === 'file' ? resolveFormats(config) : [];
  const { errors, warnings } = preflight(config, { allowUnsafeConfig: flags.allowUnsafeConfig ?? false });
  if (errors.length > 0) throw new ConfigError(errors);
  config.warnings.push(...warnings);
  return { config, formats };
}

/** What every input of a config depends on besides its own id (path, interfaces): the mode, and in file mode the formats' patterns and MaxLineLength. */
function inputDefinition({ config, formats }: Usable): string {
  const { options } = config;
  if (options.mode === 'pcap') return JSON.stringify(['pcap', options.promiscuous]);
  const patterns = formats.map((format) => [format.name, Object.entries(format.block.fields).map(([field, value]) => [field, value.pattern])]);
  return JSON.stringify(['file', options.maxLineLength, patterns, options.nflogPrefix]);
}

/** `file:line: ` of a directive, or '' when it was not written (a default). */
function where(at: SourceRef | undefined): string {
  return at === undefined ? '' : `${at.file}:${at.line}: `;
}
