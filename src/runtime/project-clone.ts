/**
 * Where a project's repository is on this machine. A project is registered
 * once (by name, with its root path and its `origin` URL) in a database that
 * many machines may share; each machine works in a repository of its own.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Project } from '../store/schema.ts';
import { git, gitRaw } from './git.ts';
import { OrchError } from '../errors.ts';

export interface CloneOptions {
  /** Where this machine keeps clones (`<reposDir>/repos/<name>`). */
  reposDir: string;
  /**
   * Work in a clone of our own even when the registered root exists here (an
   * `orch worker`: several workers on one machine must not share a checkout).
   */
  ownClone: boolean;
}

const safeName = (name: string): string => name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');

/** The clone path of a project under `reposDir` (where `orch project add <url>` also clones). */
export const clonePath = (reposDir: string, project: Pick<Project, 'name'>): string =>
  join(reposDir, 'repos', safeName(project.name));

/**
 * The project's repository on this machine: its own clone for a worker when
 * the project has a remote, else the registered root when it exists here,
 * else a clone of the remote (made now if missing).
 */
export async function localProjectRoot(project: Project, opts: CloneOptions): Promise<string> {
  const clone = clonePath(opts.reposDir, project);
  const useClone =
    (opts.ownClone && project.remote_url) || !existsSync(project.root_path) || existsSync(clone);
  if (!useClone) return project.root_path;
  if (!existsSync(clone)) {
    if (!project.remote_url) {
      throw new OrchError(
        'invalid_state',
        `project ${project.name}: its repository ${project.root_path} is not on this machine, and it has no remote to clone from (add an origin remote and register it again)`,
      );
    }
    await cloneInto(project.remote_url, clone);
  }
  return realpathSync(clone);
}

/** Clones into a temporary sibling and renames it, so a half-made clone is never taken for a clone. */
async function cloneInto(url: string, dest: string): Promise<void> {
  mkdirSync(dirname(dest), { recursive: true });
  const partial = `${dest}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  await git(dirname(dest), ['clone', '-q', '--', url, partial]);
  // orch's state under the clone (artifacts) is never committed.
  const exclude = join(partial, '.git', 'info', 'exclude');
  mkdirSync(dirname(exclude), { recursive: true });
  const current = existsSync(exclude) ? readFileSync(exclude, 'utf8') : '';
  if (!current.split('\n').includes('/.orch/')) appendFileSync(exclude, '\n/.orch/\n');
  renameSync(partial, dest);
}

/** The `origin` URL of a repository, or null; a relative local path is made absolute. */
export async function originUrl(repo: string): Promise<string | null> {
  const r = await gitRaw(repo, ['remote', 'get-url', 'origin']);
  const url = r.stdout.trim();
  if (r.code !== 0 || !url) return null;
  const isUrl = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url) || /^[^/]+@[^/:]+:/.test(url);
  return isUrl || isAbsolute(url) ? url : resolve(repo, url);
}
