/**
 * `orch worker`: one of many processes, on one machine or many, working the
 * queue of a shared database. Each worker has its own home (logs, worktrees)
 * and its own clone of each project (under `ORCH_REPOS_DIR`); stages hand off
 * through the projects' git remote.
 */
import { resolve } from 'node:path';
import { findHome, openContext, type OrchContext } from '../../runtime/context.ts';
import { Orchestrator } from '../../orchestrator.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { Env } from '../../config/settings.ts';
import { resolveAgentBinaries } from '../../runtime/preflight.ts';
import { isPostgresUrl } from '../../store/db.ts';
import { OrchError } from '../../errors.ts';
import { formatProgress, progressJson, runUntilSignalled } from './run.ts';
import { printLine, stdoutColours } from '../output.ts';
import { shutdownDeadlineMs } from '../signals.ts';

export interface WorkerOptions {
  /** The database URL (`--db`); default `ORCH_DATABASE_URL`, else the home's SQLite file. */
  db?: string;
  /** Jobs at once; default `ORCH_CONCURRENCY` (4). */
  concurrency?: number;
  /** Adapters this worker can run; empty means any. */
  labels: string[];
  untilIdle: boolean;
  json: boolean;
  print?: (line: string) => void;
  onConfigError?: (project: string, message: string) => void;
}

/** `--labels a,b` → `['a', 'b']`; blanks and repeats dropped. */
export const parseLabels = (text: string | undefined): string[] => [
  ...new Set(
    (text ?? '')
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean),
  ),
];

/**
 * The worker's home: `ORCH_HOME`, else the nearest orch home above `cwd`,
 * else `cwd` itself when a shared database is given (a fresh machine needs no
 * `orch init`: its state is only logs and worktrees).
 */
export function workerHome(cwd: string, env: Env): string {
  const home = findHome(cwd, env);
  if (home) return home;
  if (env.ORCH_DATABASE_URL) return resolve(cwd);
  throw new OrchError(
    'not_initialized',
    `no orch home here (${cwd}) and no shared database: pass --db postgres://… (or set ORCH_DATABASE_URL), or run \`orch init\``,
  );
}

export async function openWorkerContext(
  cwd: string,
  env: Env,
  opts: Pick<WorkerOptions, 'db' | 'onConfigError'>,
): Promise<OrchContext> {
  if (opts.db !== undefined && !isPostgresUrl(opts.db))
    throw new OrchError('invalid_argument', `--db must be a postgres:// URL, got ${JSON.stringify(opts.db)}`);
  const workerEnv: Env = opts.db ? { ...env, ORCH_DATABASE_URL: opts.db } : env;
  return openContext(workerHome(cwd, workerEnv), workerEnv, opts.onConfigError, { ownClones: true });
}

export async function workerCommand(ctx: OrchContext, log: Logger, opts: WorkerOptions): Promise<void> {
  // Only the agents this worker may run need to be installed here.
  if (!opts.labels.length || opts.labels.includes('command')) await resolveAgentBinaries(ctx);
  const print = opts.print ?? printLine;
  const colour = opts.print === undefined && stdoutColours();
  const concurrency = opts.concurrency ?? ctx.settings.concurrency;
  const orchestrator = new Orchestrator({
    ctx,
    log,
    concurrency,
    trackers: false,
    untilIdle: opts.untilIdle,
    labels: opts.labels,
    emit: (e) =>
      print(opts.json ? progressJson(e, { worker: orchestrator.workerId }) : formatProgress(e, { colour })),
  });
  log.info(
    `worker ${orchestrator.workerId}: ${ctx.database}, ${concurrency} at once, labels ${opts.labels.join(',') || 'any'}${opts.untilIdle ? ', until idle' : ''}`,
  );
  await runUntilSignalled(orchestrator, log, { deadlineMs: await shutdownDeadlineMs(ctx) });
}
