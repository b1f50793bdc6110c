/**
 * Runs one child process orch owns — an agent CLI, a command stage, a gate's
 * command, a hook — and reports how it ended. Every process orch starts in a
 * worktree goes through here, so each gets the same abort signal, kill ladder,
 * log and in-process registry entry (registry.ts: a second SIGINT kills them all).
 *
 * Glossary: the *agent* is the child we spawn (whatever it runs); its *group* is
 * the process group it leads (pgid = pid), which its descendants inherit unless
 * they call setsid; the *outcome* is a value with flags (execa style) —
 * runAgentProcess never rejects. Guarantees and limits of the cleanup are listed
 * in docs/architecture.md (Process control).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';
import { LineSplitter } from './line-splitter.ts';
import { findExecutable, wrapInPidNamespace } from './pid-namespace.ts';
import { endProcessGroup, processGroupAlive, type GroupEnd } from './process-group.ts';
import { registerGroup, unregisterGroup } from './registry.ts';
import { RunLog } from './run-log.ts';
import { wrapInSandbox, type SandboxPlan } from './sandbox.ts';
import { redact } from '../secrets.ts';

export { killProcessGroup, processGroupAlive } from './process-group.ts';
export { pidNamespaceAvailable } from './pid-namespace.ts';

/** What to run and how to watch it. Durations carry their unit in the name. */
export interface AgentProcessSpec {
  /** argv[0] is the executable (looked up on env.PATH); never a shell string. */
  argv: string[];
  /** Working directory of the agent. */
  cwd: string;
  /** The complete environment of the agent; process.env is not merged in. */
  env: Record<string, string>;
  /** Every stdout and stderr line (the latter prefixed "[stderr] ") is appended here; parent dirs are made. Default: no log file. */
  logPath?: string;
  /** Keep the last this many characters of stdout and stderr together, in order, as `outputTail`. Default 0 (none). */
  outputTailChars?: number;
  /** What the process is, for orch's notes and the registry of live groups (e.g. `gate check_ci_green of T-1`). Default argv[0]. */
  label?: string;
  /** Wall-clock limit, seconds; then SIGTERM to the group, SIGKILL after killGraceS. */
  timeoutS: number;
  /** Seconds between SIGTERM and SIGKILL whenever orch ends a group. */
  killGraceS: number;
  /** Seconds without any stdout/stderr output before the agent is ended as stalled; 0 disables. */
  stallTimeoutS: number;
  /** Milliseconds the agent may take to exit after a result line before orch ends it. */
  resultGraceMs: number;
  /** Milliseconds to keep reading stdout/stderr after the agent exited (a descendant may hold them). */
  drainMs: number;
  /** Longer lines are truncated to this many bytes (on a UTF-8 boundary); only this much of a line is buffered. */
  maxLineBytes: number;
  /** Run inside `unshare --pid --fork --kill-child` when that works here, so setsid escapees die too. */
  pidNamespace?: boolean;
  /**
   * Run under bubblewrap with these mounts (runtime/sandbox.ts), always in a PID namespace of its
   * own (pidNamespace is then moot). When bwrap is missing or broken nothing starts: a spawnError.
   */
  sandbox?: SandboxPlan;
  /** Aborting cancels the run: SIGTERM to the group, SIGKILL after killGraceS. */
  signal?: AbortSignal;
  /** Called once the agent has started; pgid is what the reaper must record. */
  onSpawn?: (info: { pid: number; pgid: number }) => void;
  /** Every complete line, in order per stream; `truncated` when cut to maxLineBytes. Exceptions are logged, not thrown. */
  onLine?: (line: string, stream: 'stdout' | 'stderr', meta: { truncated: boolean }) => void;
  /** Whether a stdout line is the agent's final result (starts the resultGraceMs clock). */
  isResultLine?: (line: string) => boolean;
}

/** How the agent ended. At most one of timedOut, stalled, canceled, endedAfterResult is true. */
export interface AgentProcessOutcome {
  /** Pid of the spawned process (of unshare when in a PID namespace); null if none started. */
  pid: number | null;
  /** Exit code, or minus the signal number when killed by a signal (SIGKILL => -9); null if none started. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stalled: boolean;
  canceled: boolean;
  /** The agent printed its result line, then did not exit within resultGraceMs and was ended by orch. */
  endedAfterResult: boolean;
  sawResultLine: boolean;
  durationMs: number;
  /** Last ~4 KB of stderr. */
  stderrTail: string;
  /** The last `outputTailChars` characters of stdout and stderr as printed (redacted); '' when not asked for. */
  outputTail: string;
  /** Why nothing was started (missing executable, bad spec, unwritable log), naming argv[0]; or an internal error. */
  spawnError: string | null;
  /** Lines (stdout or stderr) cut to maxLineBytes. */
  truncatedLines: number;
  /** Set when writing the log file failed part way; the run itself went on. */
  logError?: string;
}

/** Runs the agent to its end and every process of its group with it. Never rejects. */
export function runAgentProcess(spec: AgentProcessSpec): Promise<AgentProcessOutcome> {
  return new AgentRun(spec).run();
}

type EndReason = 'timeout' | 'stall' | 'cancel' | 'result';
type StreamName = 'stdout' | 'stderr';

const STDERR_TAIL_CHARS = 4096;
/** setTimeout fires at once for longer delays; 24.8 days is "no limit" for an agent. */
const MAX_TIMER_MS = 2 ** 31 - 1;

class AgentRun {
  readonly #spec: AgentProcessSpec;
  readonly #startedAt = performance.now();
  #log: RunLog | null = null;
  #pendingLog: string[] = [];
  #streams: Readable[] = [];
  /** One per stream: settles after its 'close' and the emission of its last line. */
  #streamsDone: Promise<void>[] = [];
  #paused = false;
  #pid: number | null = null;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  #spawnError: string | null = null;
  #endReason: EndReason | null = null;
  #groupEnding: Promise<GroupEnd> | null = null;
  #timeoutTimer: NodeJS.Timeout | null = null;
  #stallTimer: NodeJS.Timeout | null = null;
  #resultTimer: NodeJS.Timeout | null = null;
  #sawResultLine = false;
  #truncatedLines = 0;
  #stderrTail = '';
  #outputTail = '';
  readonly #onAbort = (): void => this.#terminate('cancel', 'canceled');

  constructor(spec: AgentProcessSpec) {
    this.#spec = spec;
  }

  async run(): Promise<AgentProcessOutcome> {
    try {
      await this.#run();
    } catch (err) {
      // A bug in here must still end the agent and yield a value.
      this.#spawnError ??= `internal error in runAgentProcess: ${describe(err)}`;
      if (this.#pid !== null) await endProcessGroup(this.#pid, this.#spec.killGraceS).catch(() => undefined);
    } finally {
      if (this.#pid !== null) unregisterGroup(this.#pid);
      this.#stopWatchdogs();
      this.#spec.signal?.removeEventListener('abort', this.#onAbort);
      for (const stream of this.#streams) stream.destroy();
    }
    if (this.#spawnError !== null) this.#note(this.#spawnError);
    await this.#log?.close();
    return this.#outcome();
  }

  async #run(): Promise<void> {
    const spec = this.#spec;
    const invalid = invalidSpec(spec);
    if (invalid !== null) {
      this.#spawnError = `invalid AgentProcessSpec: ${invalid}`;
      return;
    }
    if (spec.signal?.aborted) {
      this.#endReason = 'cancel';
      return;
    }
    if (spec.logPath !== undefined) {
      try {
        this.#log = RunLog.open(spec.logPath);
      } catch (err) {
        this.#spawnError = `cannot open log file ${spec.logPath}: ${describe(err)}`;
        return;
      }
    }
    const argv = await this.#argv();
    if (argv === null) return;
    const [file, ...args] = argv as [string, ...string[]];

    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        cwd: spec.cwd,
        env: spec.env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      this.#spawnError = spawnErrorMessage(spec.argv[0]!, spec.cwd, err);
      return;
    }
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolve();
      });
    });
    const started = new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.on('error', resolve); // also keeps a later 'error' from being an uncaught exception
    });
    this.#read(child.stdout, 'stdout');
    this.#read(child.stderr, 'stderr');

    const startError = await started;
    if (startError !== null || child.pid === undefined) {
      this.#spawnError = spawnErrorMessage(spec.argv[0]!, spec.cwd, startError);
      return;
    }
    const pid = child.pid;
    this.#pid = pid;
    registerGroup({ pgid: pid, pid, label: spec.label ?? spec.argv[0]!, startedAt: Date.now() });
    try {
      spec.onSpawn?.({ pid, pgid: pid });
    } catch (err) {
      this.#note(`onSpawn threw: ${describe(err)}`);
    }
    this.#startWatchdogs();
    spec.signal?.addEventListener('abort', this.#onAbort, { once: true });
    if (spec.signal?.aborted) this.#onAbort();

    await exited;
    // The agent is done; a cancel or watchdog from now on would only mislabel the outcome.
    this.#stopWatchdogs();
    spec.signal?.removeEventListener('abort', this.#onAbort);

    await Promise.all([this.#endLeftovers(pid), this.#drain(pid)]);
  }

  /** The argv to spawn, or null (with spawnError set) when the agent cannot be started. */
  async #argv(): Promise<string[] | null> {
    const { argv, env, cwd, sandbox } = this.#spec;
    let wrapped: string[] | null;
    if (sandbox !== undefined) {
      const inSandbox = await wrapInSandbox(argv, sandbox, cwd);
      if ('error' in inSandbox) {
        this.#spawnError = `cannot start ${JSON.stringify(argv[0])} in its sandbox: ${inSandbox.error}`;
        return null;
      }
      wrapped = inSandbox.argv;
    } else {
      if (this.#spec.pidNamespace !== true) return argv;
      wrapped = await wrapInPidNamespace(argv);
      if (wrapped === null) {
        this.#note('pidNamespace requested but `unshare --pid` does not work here; running without it');
        return argv;
      }
    }
    // unshare or bwrap, not node, would exec the agent: check it exists so a missing one stays a spawnError.
    const lookup = findExecutable(argv[0]!, env.PATH ?? '/usr/bin:/bin', cwd); // execvp's default PATH
    if ('error' in lookup) {
      this.#spawnError = spawnErrorMessage(argv[0]!, cwd, { code: lookup.error });
      return null;
    }
    return wrapped;
  }

  #read(stream: Readable | null, name: StreamName): void {
    if (stream === null) return;
    this.#streams.push(stream);
    const splitter = new LineSplitter(this.#spec.maxLineBytes, (line, dropped) =>
      this.#onLine(line, name, dropped),
    );
    stream.on('data', (chunk: Buffer) => {
      if (this.#exit === null && this.#endReason === null) this.#stallTimer?.refresh();
      splitter.push(chunk);
      this.#flushLog();
    });
    // 'close' also follows destroy(), so a line cut off by the drain limit is still emitted.
    this.#streamsDone.push(
      new Promise((resolve) => {
        stream.once('close', () => {
          splitter.end();
          this.#flushLog();
          resolve();
        });
      }),
    );
    stream.on('error', () => undefined);
  }

  #onLine(raw: string, stream: StreamName, droppedBytes: number): void {
    const { onLine, isResultLine } = this.#spec;
    // Secrets are gone before anything sees the line: the log, the parser, the stderr tail
    // (runtime/secrets.ts: token shapes, and every secret this process knows).
    const line = redact(raw);
    const truncated = droppedBytes > 0;
    let text = stream === 'stderr' ? `[stderr] ${line}` : line;
    if (truncated) {
      this.#truncatedLines += 1;
      text += ` [orch: line truncated to ${Buffer.byteLength(raw)} bytes, ${droppedBytes} bytes dropped]`;
    }
    this.#pendingLog.push(`${text}\n`);
    const keep = this.#spec.outputTailChars ?? 0;
    if (keep > 0) {
      this.#outputTail += `${line.slice(-keep)}\n`;
      if (this.#outputTail.length > 2 * keep) this.#outputTail = this.#outputTail.slice(-keep);
    }
    if (stream === 'stderr') {
      this.#stderrTail += `${line.slice(-STDERR_TAIL_CHARS)}\n`;
      if (this.#stderrTail.length > 2 * STDERR_TAIL_CHARS) {
        this.#stderrTail = this.#stderrTail.slice(-STDERR_TAIL_CHARS);
      }
    } else if (isResultLine !== undefined && this.#isResult(isResultLine, line)) {
      this.#onResultLine();
    }
    try {
      onLine?.(line, stream, { truncated });
    } catch (err) {
      this.#note(`onLine threw: ${describe(err)}`);
    }
  }

  #isResult(isResultLine: (line: string) => boolean, line: string): boolean {
    try {
      return isResultLine(line);
    } catch (err) {
      this.#note(`isResultLine threw: ${describe(err)}`);
      return false;
    }
  }

  #onResultLine(): void {
    this.#sawResultLine = true;
    // The agent has answered: from here only the result grace may end it, never the stall watchdog.
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#stallTimer = null;
    if (this.#resultTimer !== null || this.#exit !== null || this.#endReason !== null) return;
    const graceMs = this.#spec.resultGraceMs;
    this.#resultTimer = setTimeout(
      () => this.#terminate('result', `agent printed its result line but had not exited ${graceMs} ms later`),
      timerMs(graceMs),
    );
  }

  #startWatchdogs(): void {
    const { timeoutS, stallTimeoutS } = this.#spec;
    this.#timeoutTimer = setTimeout(
      () => this.#terminate('timeout', `timed out after ${timeoutS} s`),
      timerMs(timeoutS * 1000),
    );
    if (stallTimeoutS > 0) {
      this.#stallTimer = setTimeout(
        () => this.#terminate('stall', `stalled: no output for ${stallTimeoutS} s`),
        timerMs(stallTimeoutS * 1000),
      );
    }
  }

  #stopWatchdogs(): void {
    for (const timer of [this.#timeoutTimer, this.#stallTimer, this.#resultTimer])
      clearTimeout(timer ?? undefined);
    this.#timeoutTimer = this.#stallTimer = this.#resultTimer = null;
  }

  /** Ends a still-running agent; the first reason wins. */
  #terminate(reason: EndReason, why: string): void {
    const pid = this.#pid;
    if (pid === null || this.#exit !== null || this.#endReason !== null) return;
    this.#endReason = reason;
    this.#stopWatchdogs();
    this.#note(`${why}; SIGTERM to process group ${pid}, SIGKILL after ${this.#spec.killGraceS} s`);
    this.#groupEnding = endProcessGroup(pid, this.#spec.killGraceS);
    // Awaited only after the agent exits; until then a rejection must not count as unhandled.
    this.#groupEnding.catch(() => undefined);
  }

  /**
   * After the agent exits, whatever is left of its group is ended too, with
   * SIGTERM first rather than straight SIGKILL: agents run git all the time,
   * and git removes its index.lock on SIGTERM but cannot on SIGKILL; a stale
   * lock would break the next stage in the same worktree. The price is at most
   * killGraceS when a leftover ignores SIGTERM.
   */
  async #endLeftovers(pgid: number): Promise<void> {
    let ending = this.#groupEnding;
    if (ending === null) {
      if (!processGroupAlive(pgid)) return;
      this.#note(`agent exited; SIGTERM to what is left of process group ${pgid}`);
      ending = endProcessGroup(pgid, this.#spec.killGraceS);
    }
    const end = await ending;
    const grace = this.#spec.killGraceS;
    if (end === 'killed') this.#note(`process group ${pgid} outlived SIGTERM by ${grace} s; sent SIGKILL`);
    if (end === 'survived-kill') this.#note(`process group ${pgid} still has live processes after SIGKILL`);
    if (end === 'not-permitted') this.#note(`not permitted to signal process group ${pgid}`);
  }

  /** Waits for stdout and stderr to close, at most drainMs, then closes them. */
  async #drain(pgid: number): Promise<void> {
    const closed = Promise.all(this.#streamsDone);
    let timer: NodeJS.Timeout | undefined;
    const cutOff = new Promise<'cut'>((resolve) => {
      timer = setTimeout(() => resolve('cut'), timerMs(this.#spec.drainMs));
    });
    const how = await Promise.race([closed, cutOff]);
    clearTimeout(timer);
    if (how === 'cut') {
      const holder = processGroupAlive(pgid)
        ? 'its process group, still ending'
        : 'a process that left its group';
      this.#note(
        `stdout/stderr still open ${this.#spec.drainMs} ms after the agent exited (held by ${holder}); closing them`,
      );
      for (const stream of this.#streams) stream.destroy();
      await closed; // 'close' follows destroy() at once; its handler emits a cut-off last line
    }
  }

  #note(text: string): void {
    this.#pendingLog.push(`[orch] ${redact(text)}\n`);
    this.#flushLog();
  }

  /** Writes batched log text; pauses reading while the disk is behind so memory stays bounded. */
  #flushLog(): void {
    const log = this.#log;
    if (log === null || this.#pendingLog.length === 0) return;
    const text = this.#pendingLog.join('');
    this.#pendingLog = [];
    if (log.append(text) || this.#paused) return;
    this.#paused = true;
    for (const stream of this.#streams) stream.pause();
    log.onDrain(() => {
      this.#paused = false;
      for (const stream of this.#streams) stream.resume();
    });
  }

  #outcome(): AgentProcessOutcome {
    const exit = this.#exit;
    const signal = exit?.signal ?? null;
    const reason = this.#endReason;
    const outcome: AgentProcessOutcome = {
      pid: this.#pid,
      exitCode: exit === null ? null : (exit.code ?? (signal === null ? null : -osConstants.signals[signal])),
      signal,
      timedOut: reason === 'timeout',
      stalled: reason === 'stall',
      canceled: reason === 'cancel',
      endedAfterResult: reason === 'result',
      sawResultLine: this.#sawResultLine,
      durationMs: Math.round(performance.now() - this.#startedAt),
      stderrTail: this.#stderrTail.slice(-STDERR_TAIL_CHARS),
      outputTail: this.#outputTail.slice(-(this.#spec.outputTailChars ?? 0)),
      spawnError: this.#spawnError,
      truncatedLines: this.#truncatedLines,
    };
    const logError = this.#log?.error ?? null;
    if (logError !== null) outcome.logError = logError;
    return outcome;
  }
}

/** What is wrong with `spec`, or null; checked once so a bad option cannot surface mid-run. */
function invalidSpec(spec: AgentProcessSpec): string | null {
  if (!Array.isArray(spec.argv) || typeof spec.argv[0] !== 'string' || spec.argv[0] === '') {
    return 'argv must be a non-empty array starting with the executable';
  }
  const atLeast: [keyof AgentProcessSpec, number, boolean][] = [
    ['timeoutS', 0, false],
    ['killGraceS', 0, true],
    ['stallTimeoutS', 0, true],
    ['resultGraceMs', 0, true],
    ['drainMs', 0, true],
    ['maxLineBytes', 1, true],
    ['outputTailChars', 0, true],
  ];
  for (const [name, min, inclusive] of atLeast) {
    const value = spec[name] ?? (name === 'outputTailChars' ? 0 : undefined);
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      value < min ||
      (!inclusive && value === min)
    ) {
      return `${name} must be a finite number ${inclusive ? '>=' : '>'} ${min}, got ${String(value)}`;
    }
  }
  if (!Number.isInteger(spec.maxLineBytes))
    return `maxLineBytes must be an integer, got ${spec.maxLineBytes}`;
  return null;
}

function spawnErrorMessage(argv0: string, cwd: string, err: unknown): string {
  const code = errnoCode(err);
  const what = JSON.stringify(argv0);
  if (code === 'ENOENT' && !existsSync(cwd)) {
    return `cannot start ${what}: working directory ${cwd} does not exist (ENOENT)`;
  }
  if (code === 'ENOENT') return `cannot start ${what}: no such executable (ENOENT)`;
  if (code === 'EACCES') return `cannot start ${what}: permission denied, not an executable file (EACCES)`;
  return `cannot start ${what}: ${describe(err)}`;
}

function timerMs(ms: number): number {
  return Math.min(Math.max(0, Math.ceil(ms)), MAX_TIMER_MS);
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
