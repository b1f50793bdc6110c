/**
 * Where orch's state lives, and the opened store with its projects.
 *
 * The home is the repository where `orch init` ran: its `.orch/` holds the
 * database (`orch.db`), run logs, and worktrees. More projects can be
 * registered in the same home with `orch project add`; each keeps its own
 * `orch.yaml` and its own `.orch/artifacts/` (ledgers, terminal packets).
 */
import { existsSync, lstatSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { isPostgresUrl, openDatabase } from '../store/db.ts';
import { Store } from '../store/store.ts';
import type { Project, Task } from '../store/schema.ts';
import {
  globalSettings,
  projectPlan,
  reaperInvariantProblems,
  type Env,
  type EffectiveConfig,
  type GlobalSettings,
} from '../config/settings.ts';
import { parseProjectConfig, readConfigText, type ProjectConfig } from '../config/project-config.ts';
import { loadConfigFiles } from '../config/config-files.ts';
import { OrchError } from '../errors.ts';
import { localProjectRoot } from './project-clone.ts';
import { configureOrigin } from './git.ts';
import { safeName } from './safe-names.ts';
import type { PipelinePlan } from '../config/pipeline-config.ts';
import type { Plan } from '../core/pipeline.ts';

export interface ProjectRuntime {
  project: Project;
  raw: ProjectConfig;
  config: EffectiveConfig;
  pipeline: PipelinePlan;
  /** The pipeline as the state machine sees it (core/pipeline.ts): stages, routes, caps. */
  plan: Plan;
  configPath: string;
  /** The config file's modification time when it was loaded (ms). */
  loadedMtimeMs: number;
  /** The files the config names that were read with it (prompt files), and their modification times (ms). */
  files: { path: string; mtimeMs: number }[];
}

export interface OrchContext {
  home: string;
  env: Env;
  settings: GlobalSettings;
  store: Store;
  /** Where the store is: the SQLite file, or the PostgreSQL server and database (no credentials). */
  database: string;
  /**
   * A project's config. An edited `orch.yaml` is picked up on the next call; an
   * invalid edit keeps the last good config and is reported by {@link configError}.
   */
  projectRuntime(projectId: number): Promise<ProjectRuntime>;
  reloadProject(projectId: number): void;
  /** The error of the last failed reload of a project's config, if it is still failing. */
  configError(projectId: number): string | null;
  close(): Promise<void>;
}

/** Finds the home: `ORCH_HOME`, else the nearest directory upwards with `.orch/` or `orch.yaml`. */
export function findHome(cwd: string, env: Env): string | null {
  if (env.ORCH_HOME) return resolve(env.ORCH_HOME);
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, '.orch')) || existsSync(join(dir, 'orch.yaml'))) return dir;
    if (dirname(dir) === dir) return null;
  }
}

export interface ContextOptions {
  /**
   * Work in this machine's own clone of each project that has a remote
   * (`<reposDir>/repos/<name>`), cloned on first use: what `orch worker` does.
   */
  ownClones?: boolean;
  /**
   * A project whose config cannot be loaded (and was never loaded by this process) gets the
   * built-in defaults instead of an error, the error reported as for a bad reload: what a
   * person's read and cancel commands use, so a broken orch.yaml never locks them out.
   */
  lenient?: boolean;
}

export async function openContext(
  home: string,
  env: Env,
  onConfigError?: (project: string, message: string) => void,
  opts: ContextOptions = {},
): Promise<OrchContext> {
  const settings = globalSettings(env, home);
  if (settings.databaseUrl && !isPostgresUrl(settings.databaseUrl)) {
    throw new OrchError(
      'invalid_argument',
      'ORCH_DATABASE_URL must be a postgres:// or postgresql:// URL (leave it unset for the SQLite file)',
    );
  }
  configureOrigin({
    enabled:
      settings.gitHandoff === 'on' || (settings.gitHandoff === 'auto' && settings.databaseUrl !== null),
  });
  const { db, dialect, location } = await openDatabase(settings.databaseUrl ?? settings.dbPath);
  const store = new Store(db, dialect);
  const cache = new Map<number, ProjectRuntime>();
  const errors = new Map<number, string>();
  const mtimeOf = (path: string): number => {
    try {
      return statSync(path).mtimeMs;
    } catch {
      return 0;
    }
  };
  /**
   * A project's runtime from its orch.yaml, or (`defaults`: a lenient context whose orch.yaml is
   * broken) from the built-in defaults alone.
   */
  const load = async (projectId: number, defaults = false): Promise<ProjectRuntime> => {
    const row = await store.getProject(projectId);
    const rootPath = await localProjectRoot(row, {
      reposDir: settings.reposDir,
      ownClone: opts.ownClones ?? false,
    });
    const project = { ...row, root_path: rootPath };
    const configPath = join(project.root_path, 'orch.yaml');
    const loadedMtimeMs = mtimeOf(configPath);
    const text = defaults ? null : readConfigText(configPath);
    // The reaper must outlast every timeout a run can get: a file (or environment) that breaks
    // that is refused here, at start and at every reload alike.
    const raw = parseProjectConfig(text ?? '{}', configPath, (cfg) => reaperInvariantProblems(cfg, env));
    // The files it names are checked now (a missing prompt file is a config error, not a failed
    // task later), and templates parsed once.
    const named = await loadConfigFiles(raw, text ?? '', configPath, project.root_path);
    const files = named.read.map((path) => ({ path, mtimeMs: mtimeOf(path) }));
    const { config, pipeline, plan } = projectPlan(raw, env, named.templates);
    return { project, raw, config, pipeline, plan, configPath, loadedMtimeMs, files };
  };
  /** Whether the loaded config is still what is on disk: neither orch.yaml nor a file it named changed. */
  const current = (rt: ProjectRuntime): boolean =>
    mtimeOf(rt.configPath) === rt.loadedMtimeMs && rt.files.every((f) => mtimeOf(f.path) === f.mtimeMs);
  const ctx: OrchContext = {
    home,
    env,
    settings,
    store,
    database: location,
    async projectRuntime(projectId) {
      const hit = cache.get(projectId);
      if (hit && current(hit)) return hit;
      try {
        const rt = await load(projectId);
        cache.set(projectId, rt);
        errors.delete(projectId);
        return rt;
      } catch (error) {
        const message = (error as Error).message;
        // No good config yet: nothing to fall back on, unless the defaults will do.
        if (!hit && opts.lenient) {
          const fallback = await load(projectId, true);
          cache.set(projectId, fallback);
          onConfigError?.(fallback.project.name, message);
          errors.set(projectId, message);
          return fallback;
        }
        if (!hit) throw error;
        if (errors.get(projectId) !== message) onConfigError?.(hit.project.name, message);
        errors.set(projectId, message);
        // Keep the last good config, and do not re-read the bad files until they change again.
        hit.loadedMtimeMs = mtimeOf(hit.configPath);
        for (const f of hit.files) f.mtimeMs = mtimeOf(f.path);
        return hit;
      }
    },
    configError: (projectId) => errors.get(projectId) ?? null,
    reloadProject: (projectId) => void cache.delete(projectId),
    close: () => store.close(),
  };
  return ctx;
}

export async function openContextFrom(
  cwd: string,
  env: Env,
  onConfigError?: (project: string, message: string) => void,
  opts: ContextOptions = {},
): Promise<OrchContext> {
  const home = findHome(cwd, env);
  if (!home) {
    throw new OrchError(
      'not_initialized',
      `no orch project here (${cwd}): run \`orch init\` inside a git repository first`,
    );
  }
  return openContext(home, env, onConfigError, opts);
}

/**
 * Keys and project names as directory names: plain ones unchanged, others
 * sanitized with a hash of the raw value, so distinct keys never share a
 * directory (safe-names.ts).
 */
export const safeSegment = safeName;

/**
 * The real location of `path`: the real path of its deepest existing part with
 * the rest appended. A symlink on the way that points nowhere is refused, since
 * creating the path would follow it to wherever it points.
 */
function realLocation(path: string): string {
  const rest: string[] = [];
  for (let probe = path; ; probe = dirname(probe)) {
    let exists = true;
    try {
      lstatSync(probe);
    } catch {
      exists = false;
    }
    if (exists) {
      try {
        return join(realpathSync(probe), ...rest);
      } catch (error) {
        throw new OrchError(
          'invalid_state',
          `refusing ${path}: ${probe} is a broken symlink or unreadable (${(error as Error).message})`,
        );
      }
    }
    if (dirname(probe) === probe) return path;
    rest.unshift(basename(probe));
  }
}

/**
 * `root/segments…`, refused when it resolves outside `root`: a symlink inside
 * the root (say `worktrees/<project>` pointing at `/etc`) must never lead a
 * worktree, a log or an artifact elsewhere. The root itself may be a symlink.
 */
export function pathUnder(root: string, ...segments: string[]): string {
  const path = join(root, ...segments);
  const realRoot = realLocation(root);
  const real = realLocation(path);
  const inside = realRoot.endsWith(sep) ? realRoot : realRoot + sep;
  if (real !== realRoot && !real.startsWith(inside)) {
    throw new OrchError(
      'invalid_state',
      `refusing ${path}: it resolves to ${real}, outside ${realRoot} (a symlink leads out of it)`,
      { context: { path, real, root: realRoot } },
    );
  }
  return path;
}

export const paths = {
  worktreesRoot: (ctx: OrchContext) => join(ctx.settings.reposDir, 'worktrees'),
  worktree: (ctx: OrchContext, project: Project, task: Pick<Task, 'key'>) =>
    pathUnder(paths.worktreesRoot(ctx), safeName(project.name), safeName(task.key)),
  logsDir: (ctx: OrchContext, task: Pick<Task, 'key'>) =>
    pathUnder(join(ctx.settings.stateDir, 'logs'), safeName(task.key)),
  artifacts: (project: Project, task: Pick<Task, 'key'>) =>
    pathUnder(join(project.root_path, '.orch', 'artifacts'), safeName(task.key)),
};
