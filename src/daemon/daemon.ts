/**
 * The daemon: wires the configured inputs into the pipeline, keeps pending stop commands durable in
 * the state directory, logs the way knockd does, answers `knocktail status` on a root-only control
 * socket, and handles reload and shutdown.
 *
 * Start-up order: config → log → state directory (one daemon per StateDir, enforced by the control
 * socket) → pending stops read back → OnStart → pending stops re-armed (overdue ones run at once) →
 * inputs → housekeeping. The pid file and readiness reports are the command line's (commands/daemon.ts).
 */
import { join } from 'node:path';
import cron, { type ScheduledTask } from 'node-cron';
import { type Clock, SystemClock } from '../actions/clock.js';
import { FileStopStore } from '../actions/file-stop-store.js';
import { type CommandResult, type CommandRunner, commandFailed, describeOutcome, ShellRunner } from '../actions/runner.js';
import { debugConfigLines } from '../config/explain.js';
import { loadConfig } from '../config/parse.js';
import { type Config, ConfigError, formatDiagnostic, type Options, type SourceRef } from '../config/types.js';
import type { KnockEvent } from '../events.js';
import { type DecoderCounters, FormatRegistry } from '../formats/registry.js';
import type { KnockHit } from '../hit.js';
import { createInputs, type InputSet } from '../inputs/factory.js';
import type { HitSink, Input } from '../inputs/input.js';
import { uncertainLogWarnings, untrustedLogProblems } from '../inputs/trust.js';
import { Logger, type LoggerOptions } from '../logging.js';
import type { MatcherCounters } from '../matcher/matcher.js';
import { Pipeline } from '../pipeline.js';
import { VERSION } from '../version.js';
import { ControlServer, type DaemonStatus, type StatusCounters } from './control.js';
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
}

/** What tests may replace. */
export interface DaemonServices {
  clock?: Clock;
  runner?: CommandRunner;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

/**
 * Knocks are judged by the time written in the log, which lags the clock a little (rsyslog, journald
 * batching): a timeout is declared only once the clock is this far past it, so a last knock logged
 * just before its deadline but read just after still counts. The timeout event keeps its exact time.
 */
const EXPIRY_GRACE_MS = 1000;

/**
 * While hits keep coming (a backlog read after a restart, or live traffic) their own times drive expiry:
 * the clock expires knocks only once no hit came for this long. Otherwise a sequence in a backlog logged an
 * hour ago would be timed out by the clock between two reads, although its knocks were seconds apart.
 */
const HIT_FLOW_IDLE_MS = 2000;

/**
 * Housekeeping (node-cron, wall-clock based): save input positions, run stops whose time has come
 * while their monotonic timers still wait (suspend, forward clock step), expire stale knocks.
 */
const HOUSEKEEPING_EVERY = '*/5 * * * * *';

/** At shutdown, how long running commands are waited for; longer ones are left running (and reported). */
const SHUTDOWN_WAIT_MS = 5000;



/** Options that apply only at start-up: a reload that changes them keeps the running value (and says so). */
const RESTART_ONLY: ReadonlyArray<readonly [keyof Options, string]> = [
  ['mode', 'Mode'],
  ['stateDir', 'StateDir'],
  ['maxSources', 'MaxSources'],
  ['pidFile', 'PidFile'],
];

export class Daemon {
  private config: Config;
  /** What the inputs depend on besides their id; inputs are kept across a reload only while it is unchanged. */
  private inputDefinition: string;
  private readonly clock: Clock;
  private readonly runner: CommandRunner;
  private readonly pipeline: Pipeline;
  private inputs: Input[] = [];
  private doorsChanged: () => void = () => undefined;
  /** pcap mode: the capture interfaces' addresses (doors without Target accept these destinations). */
  private localAddresses: ReadonlySet<string> = new Set();
  /** Id of the input whose hit is being handled (its position is saved before an open runs commands). */
  private hitInput = '';
  /** The clock expires no knock before this time: hits are flowing, or a backlog is read (HIT_FLOW_IDLE_MS). */
  private clockExpiryHeldUntil = 0;
  private readonly sink: HitSink = (hit) => this.hit(hit);
  private deadlineTimer: NodeJS.Timeout | null = null;
  private deadlineDue = Infinity;
  /** The shortest Seq_Timeout (ms): no hit can add a deadline earlier than its time plus this. */
  private shortestTimeoutMs: number;
  private housekeeping: ScheduledTask | null = null;
  private readonly lossWarnings = new LossWarnings();
  private state: DaemonStatus['state'] = 'starting';
  private readonly startedAt: number;
  private onStartRan = false;
  private reloading: Promise<boolean> = Promise.resolve(true);
  private stopping: Promise<void> | null = null;
  /** The status counters the daemon keeps itself (the matcher and the inputs keep the others). */
  private readonly counters: Omit<StatusCounters, keyof MatcherCounters | 'linesRead' | 'linesMatched'> = {
    commandsRun: 0,
    commandsFailed: 0,
    stopsRun: 0,
    stopsLate: 0,
    extended: 0,
    errors: 0,
    reloads: 0,
    failedReloads: 0,
  };

  private constructor(
    private readonly flags: DaemonFlags,
    config: Config,
    private readonly logger: Logger,
    private readonly store: FileStopStore,
    private readonly control: ControlServer,
    services: DaemonServices,
  ) {
    this.config = config;
    this.inputDefinition = inputDefinition(config);
    this.clock = services.clock ?? new SystemClock();
    this.runner = services.runner ?? new ShellRunner();
    this.startedAt = this.clock.now();
    this.shortestTimeoutMs = shortestTimeout(config);
    this.pipeline = new Pipeline(config, {
      clock: this.clock,
      runner: this.runner,
      store,
      // File mode: the firewall's LOG rule already decided which packets are for this host.
      isLocal: config.options.mode === 'pcap' ? (dst) => this.localAddresses.has(dst) : null,
      sinks: [(event) => this.logger.event(event), (event) => this.observe(event)],
      onWarning: (message) => this.warn(message),
      unmarkedFile: join(config.options.stateDir, UNMARKED_FILE),
    });
  }

  /**
   * Loads the config and starts everything. Throws ConfigError (file:line) or Error (state directory in
   * use or unsafe, OnStart failed, an input cannot start) when it cannot; nothing is left running then.
   */
  static async start(flags: DaemonFlags, services: DaemonServices = {}): Promise<Daemon> {
    const config = loadUsableConfig(flags.configPath);
    const logger = new Logger(loggerOptions(flags, config, services));
    let control: ControlServer | null = null;
    let store: FileStopStore;
    try {
      const stateDir = config.options.stateDir;
      prepareStateDirectory(stateDir, where(config.optionsAt.stateDir), (message) => logger.error(`warning: ${message}`));
      control = await ControlServer.listen(stateDir);
      store = new FileStopStore(stateDir, (message) => logger.error(`warning: ${message}`));
    } catch (error) {
      control?.close();
      logger.log(`cannot start: ${(error as Error).message}`);
      logger.close();
      throw error;
    }
    const daemon = new Daemon(flags, config, logger, store, control, services);
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
    const inputs = this.createInputs(config);
    this.doorsChanged = inputs.doorsChanged;
    for (const input of inputs.inputs) {
      await input.start(this.sink);
      this.inputs.push(input);
    }
    logger.verbose(`listening on ${this.listeningOn()}...`);
    logger.log(`starting up, listening on ${this.listeningOn()}`);
    this.housekeeping = cron.schedule(HOUSEKEEPING_EVERY, () => this.houseKeep(), { noOverlap: true, name: 'knocktail-housekeeping', suppressMissedWarning: true });
    this.state = 'running';
    this.armDeadline();
  }

  /** Re-arms the stops the state directory kept: overdue ones run now, the others at their time. */
  private restorePendingStops(): void {
    const stops = this.pipeline.actions.restore();
    if (stops.length === 0) return;
    const now = this.clock.now();
    const overdue = stops.filter((stop) => stop.due <= now).length;
    const later = stops.length - overdue;
    this.logger.log(
      `pending stop commands from the last run: ${overdue} overdue (running now), ${later} re-armed` +
        (later > 0 ? ` (next at ${new Date(stops[overdue]!.due).toISOString()})` : ''),
    );
  }

  private createInputs(config: Config) {
    return createInputs({
      config,
      interfaces: this.flags.interfaces,
      fromEnd: this.flags.fromEnd,
      ipv4Only: this.flags.ipv4Only,
      matcher: this.pipeline.matcher,
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
    return (this.flags.interfaces.length > 0 ? this.flags.interfaces : options.interfaces).join(',');
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

  private hit(hit: KnockHit): void {
    // -4 (knockd --only-ip-v4): IPv6 knocks do not exist for the doors.
    if (this.flags.ipv4Only && hit.src.includes(':')) return;
    if (this.logger.debugging) this.logger.debugHit(hit);
    this.hitInput = hit.input;
    this.clockExpiryHeldUntil = this.clock.now() + HIT_FLOW_IDLE_MS;
    this.pipeline.hit(hit);
    // The armed timer stays right unless this hit may have added an earlier deadline (per line, this
    // comparison is all it costs).
    if (this.deadlineTimer === null || this.deadlineDue > hit.time + this.shortestTimeoutMs) this.armDeadline();
  }

  /** Counters for status, and what must happen before an open's commands run. */
  private observe(event: KnockEvent): void {
    const { counters } = this;
    switch (event.type) {
      case 'open':
        // Saved before the start command runs: after a crash the log is not read again up to this
        // knock, so it cannot open the door a second time.
        this.persistPosition(this.hitInput);
        return;
      case 'sequence':
      case 'exhausted':
        // A one-time door moved on: capture filters must let its next sequence through.
        this.doorsChanged();
        return;
      case 'start':
        counters.commandsRun++;
        return;
      case 'stop':
        counters.stopsRun++;
        if (event.lateMs >= 1000) counters.stopsLate++;
        if (event.command !== '') counters.commandsRun++;
        return;
      case 'exit':
        if (commandFailed(event.result)) counters.commandsFailed++;
        return;
      case 'extend':
        counters.extended++;
        return;
      case 'error':
        counters.errors++;
        return;
      default:
        return;
    }
  }

  private persistPosition(inputId: string): void {
    const input = this.inputs.find((candidate) => candidate.id === inputId);
    if (input !== undefined) input.persist?.();
    else for (const other of this.inputs) other.persist?.();
  }

  /** Keeps one timer on the earliest sequence deadline, so timeouts are logged when they happen. */
  private armDeadline(): void {
    const next = this.pipeline.matcher.nextDeadline();
    if (next === null || next >= this.deadlineDue) return;
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.deadlineDue = next;
    const now = this.clock.now();
    const due = Math.max(next + EXPIRY_GRACE_MS, this.clockExpiryHeldUntil);
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = null;
      this.deadlineDue = Infinity;
      this.expireByClock();
      this.armDeadline();
    }, clampDelay(due - now));
  }

  /** Expires knocks by the clock, unless hits are still flowing or a backlog is being read (then their own times do it). */
  private expireByClock(): void {
    const now = this.clock.now();
    if (now < this.clockExpiryHeldUntil) return;
    if (!this.inputs.every((input) => input.caughtUp?.() ?? true)) {
      this.clockExpiryHeldUntil = now + HIT_FLOW_IDLE_MS;
      return;
    }
    this.pipeline.matcher.expire(now - EXPIRY_GRACE_MS);
  }

  private houseKeep(): void {
    for (const input of this.inputs) input.persist?.();
    for (const message of this.lossWarnings.check(this.inputs, this.clock.now())) this.warn(message);
    this.pipeline.actions.reconcile();
    this.expireByClock();
    this.armDeadline();
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
        this.counters.failedReloads++;
        this.logger.error(`error: reload failed: ${(error as Error).message}`);
        return false;
      });
    return this.reloading;
  }

  private async reloadNow(): Promise<boolean> {
    if (this.state !== 'running') return false;
    const path = this.flags.configPath;
    this.logger.log(`re-reading config file: ${path}`);
    let loaded: Config;
    let next: InputSet;
    try {
      loaded = loadUsableConfig(path);
      // Built before anything changes: an input the new config cannot have leaves the daemon as it was.
      next = this.createInputs(this.keepRestartOnlyOptions(loaded, false));
    } catch (error) {
      this.logger.reopen();
      this.counters.failedReloads++;
      this.logger.error(`${(error as Error).message}\nreload failed: still running with the previous config`);
      return false;
    }
    this.logger.reopen(loggerOptions(this.flags, loaded, {}));
    const config = this.keepRestartOnlyOptions(loaded, true);
    this.config = config;
    this.shortestTimeoutMs = shortestTimeout(config);
    for (const warning of config.warnings) this.logger.error(`warning: ${formatDiagnostic(warning)}`);
    this.pipeline.reload(config);
    await this.reconcileInputs(config, next);
    this.doorsChanged();
    this.armDeadline();
    this.counters.reloads++;
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
  private async reconcileInputs(config: Config, next: InputSet): Promise<void> {
    const definition = inputDefinition(config);
    const unchanged = definition === this.inputDefinition;
    this.inputDefinition = definition;
    const running = new Map(this.inputs.map((input) => [input.id, input]));
    const kept: Input[] = [];
    const added: Input[] = [];
    for (const input of next.inputs) {
      const old = unchanged ? running.get(input.id) : undefined;
      if (old === undefined) {
        added.push(input);
      } else {
        running.delete(input.id);
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
        await input.start(this.sink);
        this.inputs.push(input);
        this.logger.log(`reading ${input.id}`);
      } catch (error) {
        this.logger.error(`error: ${input.id}: cannot start: ${(error as Error).message}; fix it and reload`);
      }
    }
    if (added.length > 0) this.doorsChanged = next.doorsChanged;
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
    this.housekeeping?.destroy();
    this.housekeeping = null;
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    for (const input of this.inputs) await this.stopInput(input);
    this.inputs = [];
    const { actions } = this.pipeline;
    if (this.config.options.closeOnExit && this.onStartRan) actions.closeAll();
    else actions.disarm();
    await this.waitForCommands();
    if (runOnStop && this.onStartRan) await this.runHook('OnStop', this.config.options.onStopCommand);
    this.control.close();
    this.store.close();
    this.logger.log('shutting down');
    this.logger.close();
  }

  private async waitForCommands(): Promise<void> {
    const { actions } = this.pipeline;
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      actions.settled().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), SHUTDOWN_WAIT_MS))),
    ]);
    clearTimeout(timer);
    if (finished) return;
    for (const command of actions.running()) {
      const next = command.action === 'start' ? 'its stop command is recorded and runs at the next start' : 'it runs again at the next start';
      this.warn(`${command.door}: ${command.action} command for ${command.ip} still running after ${SHUTDOWN_WAIT_MS / 1000} s, left running (${next}): ${command.command}`);
    }
  }

  status(): DaemonStatus {
    const summary = this.pipeline.matcher.summary();
    const inputs = this.inputs.map((input) => input.status());
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
      open: this.pipeline.actions.pending().map((stop) => ({ door: stop.door, ip: stop.ip, openedAt: stop.openedAt, closesAt: stop.due, stopCommand: stop.command })),
      running: this.pipeline.actions.running(),
      attempts: { count: summary.attempts, sources: summary.sources, oldest: summary.oldest },
      inputs,
      counters: { ...summary.counters, ...this.counters, linesRead, linesMatched },
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

/** A config the daemon can run: parsed, its formats compiled, its logs trusted (throws ConfigError otherwise). */
function loadUsableConfig(path: string): Config {
  const config = loadConfig(path);
  inputDefinition(config);
  const problems = untrustedLogProblems(config);
  if (problems.length > 0) throw new ConfigError(problems);
  config.warnings.push(...uncertainLogWarnings(config));
  return config;
}

/**
 * What every input of a config depends on besides its own id (path, interfaces): the mode, and in
 * file mode the log formats' patterns and MaxLineLength. Compiles the formats, so it throws
 * ConfigError for a broken or unknown one.
 */
function inputDefinition(config: Config): string {
  const { options } = config;
  if (options.mode === 'pcap') return JSON.stringify(['pcap', options.promiscuous]);
  const formats = FormatRegistry.load(config).resolve(options.logFormats, config.optionsAt.logFormats ?? { file: config.path, line: 0 });
  const patterns = formats.map((format) => [format.name, Object.entries(format.block.fields).map(([field, value]) => [field, value.pattern])]);
  return JSON.stringify(['file', options.maxLineLength, patterns, options.nflogPrefix]);
}

function shortestTimeout(config: Config): number {
  return Math.min(...config.doors.map((door) => door.seqTimeout * 1000));
}

/** `file:line: ` of a directive, or '' when it was not written (a default). */
function where(at: SourceRef | undefined): string {
  return at === undefined ? '' : `${at.file}:${at.line}: `;
}

/** setTimeout delays above about 24.8 days overflow to 1 ms: wait at most that long and check again. */
function clampDelay(ms: number): number {
  return Math.min(Math.max(0, ms), 2 ** 31 - 1);
}
