/**
 * Lock files a killed git left behind. git takes `index.lock`, `HEAD.lock`,
 * `refs/heads/<branch>.lock` and the like by creating them exclusively, and
 * removes them when it is done; a git killed in between (SIGKILL of orch's
 * process tree, the OOM killer, a power cut) leaves them, and every later
 * command that needs the same lock fails with "Unable to create '….lock':
 * File exists" until someone removes the file. git never does, so a task
 * whose worktree holds one could never commit or land again.
 *
 * A lock is stale when no live git process could have taken it: none working
 * in that repository (its cwd in one of the repository's worktrees) that
 * started before the lock's file was written (read from /proc on Linux).
 * Locks in the user's own checkout must also be older than this orch process,
 * so a lock another tool (an IDE's git library) took a moment ago is waited
 * for, never taken away. Without /proc, age alone decides: only locks older
 * than this orch process are removed.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/** When this process started (ms since the epoch). */
const STARTED_AT = performance.timeOrigin;

/** How git reports a lock held by someone else (the path is absolute). */
const LOCK_HELD = /Unable to create '([^']+\.lock)': File exists/;

/** The lock a failed git command ran into, if that is why it failed. */
export const lockInTheWay = (stderr: string, cwd: string): string | null => {
  const m = LOCK_HELD.exec(stderr);
  return m ? resolve(cwd, m[1]!) : null;
};

const HAS_PROC = existsSync('/proc/self/stat');
/** Clock ticks per second of /proc's start times (USER_HZ): 100 on every Linux build in use. */
const USER_HZ = 100;

function bootTimeMs(): number {
  const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
  return m ? Number(m[1]) * 1000 : 0;
}

/** The directories git processes of this repository work in: its worktrees and its git directory. */
function repositoryDirs(common: string): string[] {
  const dirs = [common, basename(common) === '.git' ? dirname(common) : common];
  try {
    for (const name of readdirSync(join(common, 'worktrees'))) {
      try {
        dirs.push(dirname(resolve(readFileSync(join(common, 'worktrees', name, 'gitdir'), 'utf8').trim())));
      } catch {
        // A worktree being added or pruned right now.
      }
    }
  } catch {
    // No linked worktrees.
  }
  return dirs;
}

/**
 * Whether a live git process working in the repository started before `ms`
 * (or up to a second after: /proc's boot time has one-second precision).
 * Such a process may be the one that holds a lock written at `ms`.
 */
function gitStartedBefore(ms: number, common: string): boolean {
  const boot = bootTimeMs();
  const dirs = repositoryDirs(common);
  const inRepository = (cwd: string) => dirs.some((d) => cwd === d || cwd.startsWith(d + '/'));
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      if (!comm.startsWith('git')) continue;
      // After the command name: state is field 3, starttime field 22.
      const fields = stat.slice(close + 2).split(' ');
      if (fields[0] === 'Z') continue;
      if (boot + (Number(fields[19]) / USER_HZ) * 1000 > ms + 1000) continue;
      if (inRepository(readlinkSync(`/proc/${pid}/cwd`))) return true;
    } catch {
      // The process ended while we looked, or is not ours to look at.
    }
  }
  return false;
}

/**
 * Whether the lock at `path`, in the repository whose git directory is
 * `common`, is stale (see the module comment). `orchOwned` says it belongs to
 * a task worktree orch created and alone works in; other locks (the user's
 * checkout, shared refs) must also be older than this process.
 */
export function staleLock(path: string, common: string, orchOwned: boolean): boolean {
  let mtime: number;
  try {
    mtime = statSync(path).mtimeMs;
  } catch {
    return false;
  }
  if (!HAS_PROC) return mtime < STARTED_AT;
  if (!orchOwned && mtime >= STARTED_AT) return false;
  return !gitStartedBefore(mtime, common);
}

/** Removes a stale lock; true when it is gone (also when someone else removed it first). */
function removeIfStale(
  path: string,
  common: string,
  orchOwned: boolean,
  notice: (message: string) => void,
): boolean {
  if (!existsSync(path)) return true;
  if (!staleLock(path, common, orchOwned)) return false;
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return false;
  }
  notice(`removed ${path}: a stale git lock left by a git process that died`);
  return true;
}

/** The private git directory of a worktree's top level, and whether it is a linked worktree. */
function gitDirs(dir: string): { gitDir: string; common: string; linked: boolean } | null {
  const dotGit = join(dir, '.git');
  try {
    if (statSync(dotGit).isDirectory()) return { gitDir: dotGit, common: dotGit, linked: false };
    const m = /^gitdir: (.*)$/m.exec(readFileSync(dotGit, 'utf8'));
    if (!m) return null;
    const gitDir = resolve(dir, m[1]!.trim());
    const common = resolve(gitDir, readFileSync(join(gitDir, 'commondir'), 'utf8').trim());
    return { gitDir, common, linked: true };
  } catch {
    return null;
  }
}

/**
 * Before a git command runs in `dir`: removes the stale locks it is most
 * likely to need (the worktree's index and HEAD, its branch's ref). Done
 * before rather than after a failure because some commands (a merge) do half
 * their work before they find a ref locked, and cannot simply be run again.
 * A few stats when there is no lock, which is almost always.
 */
export function clearStaleLocksFor(dir: string, notice: (message: string) => void): void {
  const dirs = gitDirs(dir);
  if (!dirs) return;
  const locks = [join(dirs.gitDir, 'index.lock'), join(dirs.gitDir, 'HEAD.lock')];
  try {
    const head = /^ref: (refs\/heads\/.+)$/.exec(readFileSync(join(dirs.gitDir, 'HEAD'), 'utf8').trim());
    if (head) locks.push(join(dirs.common, `${head[1]}.lock`));
  } catch {
    // No HEAD to read: git itself will say what is wrong.
  }
  for (const lock of locks) if (existsSync(lock)) removeIfStale(lock, dirs.common, dirs.linked, notice);
}

/**
 * After a git command failed on `lock`: removes it when stale, else waits up
 * to `waitMs` for its holder to let go. True when the lock is gone and the
 * command may run again.
 */
export async function waitOutLock(
  lock: string,
  cwd: string,
  notice: (message: string) => void,
  waitMs = 10_000,
): Promise<boolean> {
  const dirs = gitDirs(cwd);
  // Only locks of the repository the command runs in: one in another (a remote on this disk,
  // refusing a push that raced ours) is that repository's business, and its failure is the answer.
  if (!dirs || !lock.startsWith(dirs.common + '/')) return false;
  const orchOwned = dirs.linked && lock.startsWith(dirs.gitDir + '/');
  for (const deadline = Date.now() + waitMs; ;) {
    if (removeIfStale(lock, dirs.common, orchOwned, notice)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}
