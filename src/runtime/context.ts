/**
 * Where orch's state lives, and the opened store with its projects.
 *
 * The home is the repository where `orch init` ran: its `.orch/` holds the
 * database (`orch.db`), run logs, and worktrees. More projects can be
 * registered in the same home with `orch project add`; each keeps its own
 * `orch.yaml` and its own `.orch/artifacts/` (ledgers, terminal packets).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { openDatabase } from '../store/db.ts';
import { Store } from '../store/store.ts';
import type { Project, Task } from '../store/schema.ts';
import {
  globalSettings,
  effectiveConfig,
  type Env,
  type EffectiveConfig,
  type GlobalSettings,
} from '../config/settings.ts';
import { loadProjectConfig, type ProjectConfig } from '../config/project-config.ts';
import { OrchError } from '../errors.ts';

export interface ProjectRuntime {
  project: Project;
  raw: ProjectConfig;
  config: EffectiveConfig;
  configPath: string;
}

export interface OrchContext {
  home: string;
  env: Env;
  settings: GlobalSettings;
  store: Store;
  /** Loads a project's config (cached until {@link reloadProject}). */
  projectRuntime(projectId: number): Promise<ProjectRuntime>;
  reloadProject(projectId: number): void;
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

export async function openContext(home: string, env: Env): Promise<OrchContext> {
  const settings = globalSettings(env, home);
  const { db, dialect } = await openDatabase(settings.dbPath);
  const store = new Store(db, dialect);
  const cache = new Map<number, ProjectRuntime>();
  return {
    home,
    env,
    settings,
    store,
    async projectRuntime(projectId) {
      const hit = cache.get(projectId);
      if (hit) return hit;
      const project = await store.getProject(projectId);
      const configPath = join(project.root_path, 'orch.yaml');
      const raw = loadProjectConfig(configPath);
      const rt = { project, raw, config: effectiveConfig(raw, env), configPath };
      cache.set(projectId, rt);
      return rt;
    },
    reloadProject: (projectId) => void cache.delete(projectId),
    close: () => store.close(),
  };
}

export async function openContextFrom(cwd: string, env: Env): Promise<OrchContext> {
  const home = findHome(cwd, env);
  if (!home) {
    throw new OrchError(
      'not_initialized',
      `no orch project here (${cwd}): run \`orch init\` inside a git repository first`,
    );
  }
  return openContext(home, env);
}

/** Keys become directory names: anything unusual is replaced, and a hash suffix keeps distinct keys apart. */
export const safeSegment = (key: string): string => key.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');

export const paths = {
  worktree: (ctx: OrchContext, project: Project, task: Pick<Task, 'key'>) =>
    join(ctx.settings.reposDir, 'worktrees', safeSegment(project.name), safeSegment(task.key)),
  logsDir: (ctx: OrchContext, task: Pick<Task, 'key'>) =>
    join(ctx.settings.stateDir, 'logs', safeSegment(task.key)),
  artifacts: (project: Project, task: Pick<Task, 'key'>) =>
    join(project.root_path, '.orch', 'artifacts', safeSegment(task.key)),
};
