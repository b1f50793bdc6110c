/**
 * runAgentProcess against tiny real fake agents (test/fixtures/agents). Every
 * run must leave no process of its group behind; an after-each fails the test
 * (and cleans up) if one is.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  killProcessGroup,
  pidNamespaceAvailable,
  processGroupAlive,
  runAgentProcess,
  type AgentProcessOutcome,
  type AgentProcessSpec,
} from '../../src/runtime/process/run-agent-process.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/agents/', import.meta.url));
const MODULE = fileURLToPath(new URL('../../src/runtime/process/run-agent-process.ts', import.meta.url));
const fixture = (name: string): string => join(FIXTURES, name);
const unshareWorks = await pidNamespaceAvailable();
const NO_UNSHARE =
  'skipped: `unshare --pid --fork --kill-child true` fails here (needs root / CAP_SYS_ADMIN)';

const isClaudeResult = (line: string): boolean => {
  try {
    const event: unknown = JSON.parse(line);
    return typeof event === 'object' && event !== null && 'type' in event && event.type === 'result';
  } catch {
    return false;
  }
};

/** Alive and not a zombie (this sandbox's init reaps orphans only every few seconds). */
function pidLive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

let dir = '';
let groups: number[] = [];
/** Escaped processes a test let live on purpose; killed after it. */
let strays: number[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'orch-run-agent-'));
  groups = [];
  strays = [];
});

afterEach(async () => {
  const leftover = groups.filter((pgid) => processGroupAlive(pgid));
  await Promise.all(leftover.map((pgid) => killProcessGroup(pgid, 0)));
  for (const pid of strays) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
  expect(leftover, 'process groups left running after the test').toEqual([]);
});

interface Run {
  outcome: AgentProcessOutcome;
  lines: { line: string; stream: 'stdout' | 'stderr'; truncated: boolean }[];
  stdout: string[];
  log: string;
  logPath: string;
  pgid: number | null;
}

async function run(argv: string[], options: Partial<AgentProcessSpec> = {}): Promise<Run> {
  const lines: Run['lines'] = [];
  let pgid: number | null = null;
  const logPath = join(dir, 'logs', 'nested', 'run.log');
  const outcome = await runAgentProcess({
    argv,
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    logPath,
    timeoutS: 10,
    killGraceS: 1,
    stallTimeoutS: 0,
    resultGraceMs: 2000,
    drainMs: 500,
    maxLineBytes: 1024 * 1024,
    isResultLine: isClaudeResult,
    ...options,
    onSpawn: (info) => {
      pgid = info.pgid;
      groups.push(info.pgid);
      options.onSpawn?.(info);
    },
    onLine: (line, stream, meta) => {
      lines.push({ line, stream, truncated: meta.truncated });
      options.onLine?.(line, stream, meta);
    },
  });
  const log = existsSync(logPath) ? readFileSync(logPath, 'utf8') : '';
  const stdout = lines.filter((l) => l.stream === 'stdout').map((l) => l.line);
  return { outcome, lines, stdout, log, logPath, pgid };
}

function expectGroupGone(run: Run): void {
  expect(run.pgid).not.toBeNull();
  expect(run.pgid).toBe(run.outcome.pid);
  expect(processGroupAlive(run.pgid!)).toBe(false);
}

const grandchildPids = (run: Run): number[] =>
  run.stdout.filter((l) => l.startsWith('grandchild ')).map((l) => Number(l.split(' ')[1]));

const flags = (o: AgentProcessOutcome) => ({
  timedOut: o.timedOut,
  stalled: o.stalled,
  canceled: o.canceled,
  endedAfterResult: o.endedAfterResult,
});
const NO_FLAGS = { timedOut: false, stalled: false, canceled: false, endedAfterResult: false };

describe('runAgentProcess', () => {
  it('timeout: SIGTERM to the group ends a sleeping agent (-15)', async () => {
    const r = await run([fixture('sleep-forever.sh')], { timeoutS: 1, killGraceS: 1 });
    expect(flags(r.outcome)).toEqual({ ...NO_FLAGS, timedOut: true });
    expect(r.outcome).toMatchObject({ exitCode: -15, signal: 'SIGTERM', spawnError: null });
    expect(r.outcome.durationMs).toBeGreaterThanOrEqual(950);
    expect(r.outcome.durationMs).toBeLessThan(2500);
    expect(r.log).toContain('sleeping\n');
    expect(r.log).toContain('[orch] timed out after 1 s');
    expectGroupGone(r);
  });

  it('grandchildren ignoring SIGTERM are SIGKILLed after the grace, though the agent died of SIGTERM', async () => {
    const r = await run([fixture('grandchildren-ignore-term.sh')], { timeoutS: 1, killGraceS: 1 });
    expect(flags(r.outcome)).toEqual({ ...NO_FLAGS, timedOut: true });
    expect(r.outcome.exitCode).toBe(-15);
    const grandchildren = grandchildPids(r);
    expect(grandchildren).toHaveLength(2);
    expect(grandchildren.filter(pidLive)).toEqual([]);
    // They outlived SIGTERM, so the run lasted timeout + grace.
    expect(r.outcome.durationMs).toBeGreaterThanOrEqual(1900);
    expect(r.outcome.durationMs).toBeLessThan(4000);
    expect(r.log).toContain('sent SIGKILL');
    expectGroupGone(r);
  });

  it('a group that ignores SIGTERM entirely ends with SIGKILL (-9)', async () => {
    const r = await run([fixture('grandchildren-ignore-term.sh')], {
      timeoutS: 1,
      killGraceS: 1,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', IGNORE_TERM_SELF: '1' },
    });
    expect(flags(r.outcome)).toEqual({ ...NO_FLAGS, timedOut: true });
    expect(r.outcome).toMatchObject({ exitCode: -9, signal: 'SIGKILL' });
    expect(grandchildPids(r).filter(pidLive)).toEqual([]);
    expect(r.log).toContain('ready\n');
    expectGroupGone(r);
  });

  it('stall watchdog ends an agent that stops printing', async () => {
    const r = await run([fixture('silent-stall.sh')], { stallTimeoutS: 1, timeoutS: 10 });
    expect(flags(r.outcome)).toEqual({ ...NO_FLAGS, stalled: true });
    expect(r.outcome.exitCode).toBe(-15);
    expect(r.outcome.durationMs).toBeGreaterThanOrEqual(950);
    expect(r.outcome.durationMs).toBeLessThan(2500);
    expect(r.log).toContain('thinking...\n');
    expect(r.log).toContain('[orch] stalled: no output for 1 s');
    expectGroupGone(r);
  });

  it('stall watchdog is reset by output', async () => {
    const r = await run(['bash', '-c', 'for i in 1 2 3 4 5; do echo "tick $i"; sleep 0.3; done'], {
      stallTimeoutS: 1,
    });
    expect(flags(r.outcome)).toEqual(NO_FLAGS);
    expect(r.outcome.exitCode).toBe(0);
    expect(r.stdout).toHaveLength(5);
    expect(r.outcome.durationMs).toBeGreaterThanOrEqual(1400);
    expectGroupGone(r);
  });

  it('exit 0 without a result line', async () => {
    const r = await run([fixture('exit0-no-result.sh')]);
    expect(flags(r.outcome)).toEqual(NO_FLAGS);
    expect(r.outcome).toMatchObject({ exitCode: 0, signal: null, sawResultLine: false, spawnError: null });
    expect(r.outcome.stderrTail).toBe('a warning\n');
    expect(r.stdout).toEqual([
      '{"type":"system","subtype":"init","session_id":"s-1","model":"fake"}',
      'working on it',
    ]);
    expect(r.log).toContain('working on it\n');
    expect(r.log).toContain('[stderr] a warning\n');
    expect(r.outcome.durationMs).toBeLessThan(2000);
    expectGroupGone(r);
  });

  it('exit codes pass through', async () => {
    const r = await run(['bash', '-c', 'echo bye; exit 3']);
    expect(r.outcome).toMatchObject({ exitCode: 3, signal: null, ...NO_FLAGS });
    expectGroupGone(r);
  });

  it('result then hang: ended after resultGraceMs', async () => {
    const r = await run([fixture('result-then-hang.sh')], { resultGraceMs: 300, timeoutS: 10 });
    expect(flags(r.outcome)).toEqual({ ...NO_FLAGS, endedAfterResult: true });
    expect(r.outcome).toMatchObject({ sawResultLine: true, exitCode: -15 });
    expect(r.outcome.durationMs).toBeGreaterThanOrEqual(280);
    expect(r.outcome.durationMs).toBeLessThan(2000);
    expect(r.log).toContain('"type":"result"');
    expect(r.log).toContain('[orch] agent printed its result line but had not exited 300 ms later');
    expectGroupGone(r);
  });

  it('a 12 MB line is truncated with bounded memory and the result line after it is seen', async () => {
    const maxLineBytes = 64 * 1024;
    const r = await run([fixture('huge-line.mjs')], { maxLineBytes });
    expect(r.outcome).toMatchObject({ exitCode: 0, truncatedLines: 1, sawResultLine: true, ...NO_FLAGS });
    expect(r.lines).toHaveLength(2);
    const [huge, result] = r.lines;
    expect(huge!.truncated).toBe(true);
    expect(Buffer.byteLength(huge!.line)).toBe(maxLineBytes);
    expect(huge!.line.startsWith('{"type":"assistant","text":"xxx')).toBe(true);
    expect(result).toEqual({
      line: expect.stringContaining('"after huge"'),
      stream: 'stdout',
      truncated: false,
    });
    expect(r.log).toContain(`[orch: line truncated to ${maxLineBytes} bytes, `);
    expect(r.log).toContain('"after huge"');
    expect(statSync(r.logPath).size).toBeLessThan(2 * maxLineBytes);
    expectGroupGone(r);
  });

  it('malformed and mixed output: every line delivered, in order', async () => {
    const r = await run([fixture('malformed-mixed.sh')]);
    expect(r.outcome).toMatchObject({ exitCode: 0, sawResultLine: true, truncatedLines: 0, ...NO_FLAGS });
    const expected = [
      '{"type":"system","subtype":"init","session_id":"s-1","model":"fake"}',
      '{"type":"assistant", "message":',
      'plain text, not json',
      '',
      '{"type":"assistant","message":{"content":[{"type":"text","text":"hi"}]}}',
      'crlf line',
      '}{ broken',
      '{"type":"user","message":{"content":[{"type":"tool_result","content":"ok"}]}}',
      '{"type":"result","subtype":"success","is_error":false,"result":"done"}',
    ];
    expect(r.stdout).toEqual(expected);
    expect(r.lines.filter((l) => l.stream === 'stderr').map((l) => l.line)).toEqual(['to stderr']);
    const logLines = r.log.split('\n').filter((l) => !l.startsWith('['));
    expect(logLines.slice(0, -1)).toEqual(expected);
    expect(r.log).toContain('[stderr] to stderr\n');
    expectGroupGone(r);
  });

  it('cancel via AbortSignal', async () => {
    const abort = new AbortController();
    const r = await run([fixture('sleep-forever.sh')], {
      signal: abort.signal,
      onLine: () => setTimeout(() => abort.abort(), 100),
    });
    expect(flags(r.outcome)).toEqual({ ...NO_FLAGS, canceled: true });
    expect(r.outcome.exitCode).toBe(-15);
    expect(r.outcome.durationMs).toBeLessThan(2000);
    expect(r.log).toContain('sleeping\n');
    expect(r.log).toContain('[orch] canceled');
    expectGroupGone(r);
  });

  it('an already aborted signal starts nothing', async () => {
    const r = await run([fixture('sleep-forever.sh')], { signal: AbortSignal.abort() });
    expect(r.outcome).toMatchObject({ pid: null, exitCode: null, canceled: true, spawnError: null });
    expect(r.pgid).toBeNull();
  });

  it('missing executable: spawnError names it', async () => {
    const missing = join(dir, 'no-such-agent');
    const r = await run([missing, '--print']);
    expect(r.outcome).toMatchObject({ pid: null, exitCode: null, signal: null, ...NO_FLAGS });
    expect(r.outcome.spawnError).toContain(missing);
    expect(r.outcome.spawnError).toContain('ENOENT');
    expect(r.pgid).toBeNull();
    expect(r.log).toContain(missing);
  });

  it('a file that is not executable: spawnError says EACCES', async () => {
    const notExecutable = join(dir, 'agent.txt');
    writeFileSync(notExecutable, 'echo hi\n', { mode: 0o644 });
    const r = await run([notExecutable]);
    expect(r.outcome).toMatchObject({ pid: null, exitCode: null });
    expect(r.outcome.spawnError).toContain(notExecutable);
    expect(r.outcome.spawnError).toContain('EACCES');
  });

  it('an invalid spec or unwritable log starts nothing', async () => {
    const bad = await run([fixture('sleep-forever.sh')], { timeoutS: 0 });
    expect(bad.outcome.spawnError).toMatch(/^invalid AgentProcessSpec: timeoutS/);
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const noLog = await run([fixture('sleep-forever.sh')], { logPath: join(file, 'run.log') });
    expect(noLog.outcome.spawnError).toContain('cannot open log file');
    expect([bad.pgid, noLog.pgid, bad.outcome.pid, noLog.outcome.pid]).toEqual([null, null, null, null]);
  });

  it('a log path taken by a FIFO or a symlink starts nothing, at once (the open never waits for a reader)', async () => {
    const fifo = join(dir, 'fifo.log');
    spawnSync('mkfifo', [fifo]);
    const onFifo = await run([fixture('sleep-forever.sh')], { logPath: fifo });
    expect(onFifo.outcome.spawnError).toMatch(/cannot open log file .*fifo\.log: .*ENXIO/);
    const target = join(dir, 'elsewhere.txt');
    writeFileSync(target, 'untouched\n');
    const link = join(dir, 'link.log');
    symlinkSync(target, link);
    const onLink = await run([fixture('sleep-forever.sh')], { logPath: link });
    expect(onLink.outcome.spawnError).toMatch(/cannot open log file .*link\.log: .*ELOOP/);
    expect(readFileSync(target, 'utf8')).toBe('untouched\n');
    expect([onFifo.pgid, onLink.pgid]).toEqual([null, null]);
  });

  it('without a log file, keeps the output tail of stdout and stderr, each in order, redacted', async () => {
    const script = `echo one; echo two >&2; echo 'token ghp_${'x'.repeat(36)}'; echo four`;
    const r = await run(['sh', '-c', script], { logPath: undefined, outputTailChars: 60 });
    expect(r.outcome).toMatchObject({ exitCode: 0, spawnError: null });
    // Each stream's lines in order; the two pipes are read side by side, so across them as they came.
    expect(r.outcome.outputTail.split('\n').sort()).toEqual(['', 'four', 'one', 'token [REDACTED]', 'two']);
    expect(r.outcome.outputTail).toMatch(/one\n(.*\n)?token \[REDACTED\]\n(.*\n)?four\n/);
    expect(existsSync(r.logPath)).toBe(false);
    const long = await run(['sh', '-c', 'seq 1 1000'], { logPath: undefined, outputTailChars: 10 });
    expect(long.outcome.outputTail).toBe('\n998\n999\n1000\n'.slice(-10));
  });

  it('a grandchild holding stdout open does not hang the run', async () => {
    const r = await run([fixture('grandchild-holds-pipe.sh')], { drainMs: 500 });
    expect(r.outcome).toMatchObject({ exitCode: 0, ...NO_FLAGS });
    expect(r.outcome.durationMs).toBeLessThan(3000);
    const [grandchild] = grandchildPids(r);
    expect(grandchild).toBeGreaterThan(1);
    expect(pidLive(grandchild!)).toBe(false);
    expect(r.log).toContain('grandchild ');
    expect(r.log).toContain('[orch] agent exited; SIGTERM to what is left of process group');
    expectGroupGone(r);
  });

  it('without a PID namespace a setsid escapee survives, and drainMs stops it holding the run', async () => {
    // Documents the limit stated in README.md, and shows the fixture really escapes.
    const pidFile = join(dir, 'escaped.pid');
    const r = await run([fixture('setsid-escape.sh'), pidFile], { drainMs: 300 });
    const escaped = Number(readFileSync(pidFile, 'utf8'));
    strays.push(escaped);
    expect(r.outcome).toMatchObject({ exitCode: 0, ...NO_FLAGS });
    expect(pidLive(escaped)).toBe(true);
    expect(r.outcome.durationMs).toBeGreaterThanOrEqual(290);
    expect(r.outcome.durationMs).toBeLessThan(2000);
    expect(r.log).toContain('(held by a process that left its group); closing them');
    expectGroupGone(r);
  });

  it.skipIf(!unshareWorks)('with pidNamespace a setsid escapee dies with the agent', async () => {
    const pidFile = join(dir, 'escaped.pid');
    const r = await run([fixture('setsid-escape.sh'), pidFile], { pidNamespace: true, drainMs: 2000 });
    const escaped = Number(readFileSync(pidFile, 'utf8'));
    strays.push(escaped);
    expect(r.outcome).toMatchObject({ exitCode: 0, ...NO_FLAGS });
    expect(r.stdout).toEqual([`escaped ${escaped}`]);
    expect(escaped).toBeGreaterThan(1);
    expect(() => process.kill(escaped, 0)).toThrow();
    expect(r.outcome.durationMs).toBeLessThan(1500);
    expectGroupGone(r);
  });

  it.skipIf(!unshareWorks)('with pidNamespace a timeout ends the whole namespace', async () => {
    const r = await run([fixture('grandchildren-ignore-term.sh')], {
      pidNamespace: true,
      timeoutS: 1,
      killGraceS: 1,
    });
    expect(flags(r.outcome)).toEqual({ ...NO_FLAGS, timedOut: true });
    // The script is PID 1 of the namespace, where SIGTERM without a handler is dropped; its
    // `sleep` child dies of it and bash then exits 128+15. The TERM-ignoring grandchildren die
    // with the namespace at once, so no SIGKILL grace is spent (contrast the test without it).
    expect(r.outcome).toMatchObject({ exitCode: 143, signal: null });
    expect(r.outcome.durationMs).toBeLessThan(1900);
    expect(r.stdout.slice(0, 3)).toEqual(['grandchild 2', 'grandchild 3', 'ready']);
    expectGroupGone(r);
  });

  it.skipIf(!unshareWorks)('with pidNamespace a missing executable is still a spawnError', async () => {
    const missing = join(dir, 'no-such-agent');
    const r = await run([missing], { pidNamespace: true });
    expect(r.outcome).toMatchObject({ pid: null, exitCode: null });
    expect(r.outcome.spawnError).toContain(missing);
    expect(r.outcome.spawnError).toContain('ENOENT');
  });

  it.skipIf(unshareWorks)(`pidNamespace falls back to a plain run (${NO_UNSHARE})`, async () => {
    const r = await run([fixture('exit0-no-result.sh')], { pidNamespace: true });
    expect(r.outcome.exitCode).toBe(0);
    expect(r.log).toContain('pidNamespace requested but');
  });

  it('leaves no timers, child handles or pipes behind: a node process using it exits by itself', async () => {
    // Long timeout, stall and drain limits: any of them left armed would keep this node process alive.
    const script = `
      import { runAgentProcess } from ${JSON.stringify(MODULE)};
      const [agent, logPath] = process.argv.slice(1);
      const outcome = await runAgentProcess({
        argv: [agent], cwd: process.cwd(), env: { PATH: process.env.PATH }, logPath,
        timeoutS: 60, killGraceS: 30, stallTimeoutS: 60, resultGraceMs: 200, drainMs: 60000,
        maxLineBytes: 4096, isResultLine: (line) => line.includes('"type":"result"'),
        signal: new AbortController().signal,
      });
      process.stdout.write(JSON.stringify(outcome));
    `;
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', script, fixture('result-then-hang.sh'), join(dir, 'run.log')],
      { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    groups.push(child.pid!);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const started = performance.now();
    const code = await new Promise<number | null>((resolve) => {
      const limit = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', (exitCode) => {
        clearTimeout(limit);
        resolve(exitCode);
      });
    });
    expect(code).toBe(0);
    expect(performance.now() - started).toBeLessThan(4000);
    expect(JSON.parse(stdout)).toMatchObject({ endedAfterResult: true, exitCode: -15 });
  });
});

describe('killProcessGroup / processGroupAlive', () => {
  it('TERM, then KILL after the grace, for a group that ignores TERM', async () => {
    const child = spawn(fixture('grandchildren-ignore-term.sh'), [], {
      detached: true,
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', IGNORE_TERM_SELF: '1' },
    });
    const pgid = child.pid!;
    groups.push(pgid);
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once('exit', (_, signal) => resolve(signal)),
    );
    await new Promise<void>((resolve) => {
      let seen = '';
      child.stdout.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (seen.includes('ready\n')) resolve();
      });
    });
    expect(processGroupAlive(pgid)).toBe(true);
    const started = performance.now();
    await killProcessGroup(pgid, 0.5);
    const tookMs = performance.now() - started;
    expect(processGroupAlive(pgid)).toBe(false);
    expect(tookMs).toBeGreaterThanOrEqual(450);
    expect(tookMs).toBeLessThan(2500);
    expect(await exited).toBe('SIGKILL');
    child.stdout.destroy();
  });

  it('is quick for a group that obeys TERM, and a no-op for a gone group', async () => {
    const child = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    const pgid = child.pid!;
    groups.push(pgid);
    const started = performance.now();
    await killProcessGroup(pgid, 5);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(processGroupAlive(pgid)).toBe(false);
    await killProcessGroup(pgid, 5);
  });

  it('refuses process group ids that would hit orch itself or everything', async () => {
    const stat = readFileSync('/proc/self/stat', 'latin1');
    const ownPgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    for (const pgid of [0, 1, -1, -4242, 2.5, Number.NaN, ownPgid]) {
      expect(() => processGroupAlive(pgid), `pgid ${pgid}`).toThrow(RangeError);
      await expect(killProcessGroup(pgid, 0), `pgid ${pgid}`).rejects.toThrow(RangeError);
    }
  });
});
