/**
 * Git, always through an argv array (never a shell), so task titles and keys
 * can never become shell code.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { OrchError } from '../errors.ts';
import { safeName } from './safe-names.ts';
import { clearStaleLocksFor, lockInTheWay, waitOutLock } from './git-locks.ts';
import { GitRefusal, machineTrouble, parseStatusZ, refusedPaths } from './git-refusal.ts';

export { GitRefusal, MAX_COMMIT_FILE_BYTES } from './git-refusal.ts';

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

const GIT_ENV = {
  GIT_TERMINAL_PROMPT: '0',
  GIT_AUTHOR_NAME: 'orch',
  GIT_AUTHOR_EMAIL: 'orch@localhost',
  GIT_COMMITTER_NAME: 'orch',
  GIT_COMMITTER_EMAIL: 'orch@localhost',
};

/** Where git.ts reports what it did on its own: a stale lock file it removed. */
const notice = (message: string): void => process.emitWarning(message, 'OrchGitLock');

/**
 * Runs git and returns its outcome as a value. A lock file left by a git that
 * died (git-locks.ts) would fail the command, and every later one, forever:
 * stale locks the command needs are removed first, and a command that still
 * runs into a lock waits for it (or removes it when stale) and runs again.
 */
export async function gitRaw(
  cwd: string,
  args: readonly string[],
  timeoutMs = 120_000,
  /** Let git look for the repository above `cwd` (finding a project's root from inside it). */
  discover = false,
): Promise<GitResult> {
  clearStaleLocksFor(cwd, notice);
  // A few rounds: one command may run into one lock after another (the index, then a ref).
  for (let round = 1; ; round += 1) {
    const r = await runGit(cwd, args, timeoutMs, discover);
    const lock = r.code !== 0 ? lockInTheWay(r.stderr, cwd) : null;
    if (!lock || round >= 4 || !(await waitOutLock(lock, cwd, notice))) return r;
  }
}

/**
 * orch runs git at a repository's top level (the project, a task's worktree), never below it: git
 * is kept from looking for a repository above `cwd` (GIT_CEILING_DIRECTORIES), so a worktree whose
 * `.git` an agent deleted is no repository at all, instead of the project's own checkout (whose
 * branch and uncommitted work a commit there would take).
 */
function runGit(
  cwd: string,
  args: readonly string[],
  timeoutMs: number,
  discover: boolean,
): Promise<GitResult> {
  const env = {
    ...process.env,
    ...GIT_ENV,
    ...(discover ? {} : { GIT_CEILING_DIRECTORIES: dirname(resolve(cwd)) }),
  };
  return new Promise((resolvePromise) => {
    execFile(
      'git',
      args as string[],
      { cwd, env, maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolvePromise({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** Runs git; throws a clear error when it fails. */
export async function git(cwd: string, args: readonly string[]): Promise<string> {
  const r = await gitRaw(cwd, args);
  if (r.code !== 0) {
    throw new OrchError(
      'git_failed',
      `git ${args.join(' ')} failed in ${cwd}: ${r.stderr.trim() || r.stdout.trim()}`,
      {
        context: { args, cwd },
      },
    );
  }
  return r.stdout;
}

/** Whether `dir` is a repository's top level (or, with `discover`, inside one). */
export async function isGitRepo(dir: string, discover = false): Promise<boolean> {
  const r = await gitRaw(dir, ['rev-parse', '--is-inside-work-tree'], 120_000, discover);
  return r.code === 0 && r.stdout.trim() === 'true';
}

export async function repoRoot(dir: string): Promise<string> {
  const r = await gitRaw(dir, ['rev-parse', '--show-toplevel'], 120_000, true);
  if (r.code !== 0)
    throw new OrchError('git_failed', `git rev-parse --show-toplevel failed in ${dir}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** The checked-out branch, or `main` for a repository with no commit yet. */
export async function currentBranch(dir: string): Promise<string> {
  // A landing asks this every time: the HEAD file answers without a git process when it is the
  // plain `ref: refs/heads/…` of the files backend (reftable keeps a placeholder there).
  const gitDir = gitDirOf(dir);
  if (gitDir) {
    try {
      const head = /^ref: refs\/heads\/(.+)$/.exec(readFileSync(join(gitDir, 'HEAD'), 'utf8').trim());
      if (head && head[1] !== '.invalid') return head[1]!;
    } catch {
      /* ask git */
    }
  }
  const r = await gitRaw(dir, ['symbolic-ref', '--short', 'HEAD']);
  return r.code === 0 ? r.stdout.trim() : 'main';
}

/**
 * The task's branch: `orch/<KEY>` for a plain key, else `orch/<sanitized>-<hash>`
 * (safe-names.ts), so a tracker's key can never make an invalid or shared ref.
 */
export const taskBranch = (key: string): string => `orch/${safeName(key)}`;

export async function validBranchName(dir: string, name: string): Promise<boolean> {
  return (await gitRaw(dir, ['check-ref-format', '--branch', name])).code === 0;
}

/**
 * Worktrees this process created or checked, so a stage does not spawn git to
 * ask again. A worktree removed since is caught by its `.git` file being gone,
 * and the removals here forget it.
 */
const readyWorktrees = new Set<string>();

/**
 * Creates the task's worktree on its branch, or reuses it. A new branch
 * starts at the current tip of the base branch. Returns true when it created
 * the worktree (so it holds nothing but the branch's last commit).
 */
export async function ensureWorktree(
  repo: string,
  path: string,
  branch: string,
  base: string,
): Promise<boolean> {
  if (readyWorktrees.has(path) && existsSync(join(path, '.git'))) return false;
  if (existsSync(path) && (await isGitRepo(path))) {
    readyWorktrees.add(path);
    return false;
  }
  // git's worktree add and prune are not safe side by side in one repository: one reads the
  // other's half-written .git/worktrees entry. Tasks starting together take turns.
  return serialized(repo, async () => {
    if (existsSync(path) && (await isGitRepo(path))) return false;
    mkdirSync(dirname(path), { recursive: true });
    // The usual case, a new task: one git call. A branch that exists already, or a stale
    // registration of a worktree deleted by hand, takes the careful way below.
    const fresh = existsSync(path)
      ? { code: 1 }
      : await gitRaw(repo, ['worktree', 'add', '-q', '-b', branch, path, base]);
    if (fresh.code !== 0) {
      // A worktree directory that is no repository any more (an agent deleted its .git) holds
      // only a failed run's leftovers: it goes, so the worktree can be made there again.
      if (existsSync(path) && !(await isGitRepo(path))) rmSync(path, { recursive: true, force: true });
      await gitRaw(repo, ['worktree', 'prune']);
      const hasBranch =
        (await gitRaw(repo, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`])).code === 0;
      const args = hasBranch
        ? ['worktree', 'add', '--force', path, branch]
        : ['worktree', 'add', '-b', branch, path, base];
      await git(repo, args);
    }
    readyWorktrees.add(path);
    return true;
  });
}

/**
 * Whether a merge is in progress in the worktree (MERGE_HEAD exists), read
 * from its git directory instead of spawning git: a linked worktree's `.git`
 * is a file naming that directory, a main worktree's is the directory itself.
 */
export function mergeInProgress(worktree: string): boolean {
  const dir = gitDirOf(worktree);
  return dir !== null && existsSync(join(dir, 'MERGE_HEAD'));
}

/** The git directory of a worktree's top level, or null when it has none. */
export function gitDirOf(worktree: string): string | null {
  const dotGit = join(worktree, '.git');
  try {
    if (!statSync(dotGit).isFile()) return dotGit;
    const m = /^gitdir: (.*)$/m.exec(readFileSync(dotGit, 'utf8'));
    return m ? resolve(worktree, m[1]!.trim()) : null;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------ refs read from the files
//
// A stage asks git for a commit id a few times; each ask is a process. These read the ref files
// git keeps (loose refs, then packed-refs) and answer null whenever only git can tell (a
// reftable repository, a symbolic ref, anything unexpected); callers then ask git.

const SHA = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;
const readText = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

/** The commit a full ref name (`refs/heads/main`) points at, in the repository of `worktree`. */
export function refCommit(worktree: string, ref: string): string | null {
  const gitDir = gitDirOf(worktree);
  if (!gitDir || !ref.startsWith('refs/')) return null;
  const common = readText(join(gitDir, 'commondir'));
  const commonDir = common ? resolve(gitDir, common.trim()) : gitDir;
  const loose = readText(join(commonDir, ref))?.trim();
  if (loose !== undefined) return SHA.test(loose) ? loose : null;
  for (const line of (readText(join(commonDir, 'packed-refs')) ?? '').split('\n')) {
    const [sha, name] = line.split(' ');
    if (name === ref && sha && SHA.test(sha)) return sha;
  }
  return null;
}

/** The commit checked out in `worktree` (its HEAD), read from the files, or null. */
export function headCommit(worktree: string): string | null {
  const gitDir = gitDirOf(worktree);
  const head = gitDir ? readText(join(gitDir, 'HEAD'))?.trim() : undefined;
  if (!head) return null;
  if (SHA.test(head)) return head;
  const m = /^ref: (refs\/\S+)$/.exec(head);
  return m ? refCommit(worktree, m[1]!) : null;
}

/**
 * Drops what an unfinished run left in the worktree (a killed agent's partial
 * edits), so the next run starts from the last commit: only a clean run's work
 * is ever committed. A merge in progress is a landing conflict left for the
 * developer on purpose, and is kept. `clean -ff` removes repositories an agent
 * made inside the worktree too (`-f` alone keeps them, and the next commit
 * would be refused again for the same leftover).
 */
export async function discardUncommitted(worktree: string): Promise<boolean> {
  if (mergeInProgress(worktree)) return false;
  const status = await git(worktree, ['status', '--porcelain']);
  if (!status.trim()) return false;
  await git(worktree, ['reset', '-q', '--hard', 'HEAD']);
  await git(worktree, ['clean', '-q', '-ffd']);
  return true;
}

/**
 * Before a development run: when the branch no longer merges onto the base (its landing found a
 * conflict), the base is merged in and the conflict left in progress for the developer, unless
 * one is in progress already. The landing that failed left it so in its own worktree; a worker
 * with another clone (PostgreSQL, the git handoff) finds the branch without it and starts it
 * here, so the developer always resolves the merge the feedback speaks of. Returns the files in
 * conflict (none: nothing was done).
 */
export async function reopenMergeConflict(worktree: string, base: string): Promise<string[]> {
  if (mergeInProgress(worktree)) return [];
  // A branch at the base's tip merges it trivially (the usual first run of a task): no git.
  const head = headCommit(worktree);
  if (head !== null && head === refCommit(worktree, `refs/heads/${base}`)) return [];
  const probe = await gitRaw(worktree, ['merge-tree', '--write-tree', '--name-only', base, 'HEAD']);
  if (probe.code === 0) return [];
  const merged = await mergeBaseInto(worktree, base);
  return merged && !merged.ok ? merged.conflicts : [];
}

/**
 * Commits everything in the worktree; returns the new commit or null when
 * nothing changed. A clean worktree costs one git call (`status`), the usual
 * case for stages that only read. What the worktree holds that cannot be
 * committed (a repository of its own, a file over `MAX_COMMIT_FILE_BYTES`, or
 * anything else git refuses) throws a {@link GitRefusal} carrying feedback for
 * the developer; a failure of the machine (disk full…) stays an `OrchError`.
 */
export async function commitAll(worktree: string, message: string): Promise<string | null> {
  // A merge left in progress (a landing conflict the developer resolved) is concluded even when
  // the resolution leaves no difference to show.
  // The run removed its worktree's link to the repository: its work cannot be committed (and git,
  // kept from looking above the worktree, would say only "not a git repository").
  if (gitDirOf(worktree) === null)
    throw new GitRefusal(worktree, {
      gitMessage: `the worktree's .git was removed or broken by the run: never delete or edit .git; the worktree is made again for the next try`,
    });
  const merging = mergeInProgress(worktree);
  const status = await git(worktree, ['status', '--porcelain=v1', '-z', '--untracked-files=all']);
  if (!merging && !status) return null;
  const refused = await refusedPaths(worktree, parseStatusZ(status));
  if (refused.length) throw new GitRefusal(worktree, { paths: refused });
  const added = await gitRaw(worktree, ['add', '-A']);
  if (added.code !== 0) throw commitFailure(worktree, 'add -A', added);
  const committed = await gitRaw(worktree, ['commit', '-q', '--no-verify', '-m', message]);
  if (committed.code !== 0) {
    // Staged changes that undo each other (an edit reverted before the run ended) leave nothing.
    if (!merging && /nothing to commit|no changes added/.test(committed.stdout + committed.stderr))
      return null;
    throw commitFailure(worktree, 'commit', committed);
  }
  return headCommit(worktree) ?? (await git(worktree, ['rev-parse', 'HEAD'])).trim();
}

/** A failed `git add` or `git commit`: the worktree's content refused, or (disk full…) the machine's trouble. */
function commitFailure(worktree: string, command: string, r: GitResult): OrchError {
  const said = r.stderr.trim() || r.stdout.trim();
  if (machineTrouble(r.stderr))
    return new OrchError('git_failed', `git ${command} failed in ${worktree}: ${said}`, {
      context: { cwd: worktree },
    });
  return new GitRefusal(worktree, { gitMessage: said });
}

/** {@link diffHash} of an empty diff. */
const EMPTY_DIFF_HASH = createHash('sha256').update('').digest('hex');

/**
 * Hash of the normalized diff between the base and the branch: what the task
 * changed, independent of commit ids, dates and how the work was split.
 */
export async function diffHash(worktree: string, base: string): Promise<string> {
  // A branch still at the base's tip (a stage that changed nothing yet) has the empty diff.
  const head = headCommit(worktree);
  if (head && head === refCommit(worktree, `refs/heads/${base}`)) return EMPTY_DIFF_HASH;
  // `base...HEAD` diffs from the merge base: one git call instead of merge-base, then diff.
  const diff = await git(worktree, [
    'diff',
    '--no-color',
    '--no-ext-diff',
    '--full-index',
    '--no-renames',
    `${base}...HEAD`,
  ]);
  const normalized = diff
    .split('\n')
    .filter((l) => !l.startsWith('index '))
    .map((l) => l.trimEnd())
    .join('\n');
  return createHash('sha256').update(normalized).digest('hex');
}

export async function diffStat(worktree: string, base: string): Promise<string> {
  const r = await gitRaw(worktree, ['diff', '--stat', `${base}...HEAD`]);
  return r.code === 0 ? r.stdout : '';
}

export type MergeOutcome =
  | { ok: true; commit: string }
  | {
      ok: false;
      conflicts: string[];
      message: string;
      cancelled?: boolean;
      /** origin's base kept moving under every round (other landings): nothing is wrong with the work. */
      contended?: boolean;
    };

/** The landing was called off before the base moved: the task was cancelled meanwhile. */
const CALLED_OFF: MergeOutcome = {
  ok: false,
  conflicts: [],
  message: 'the landing was called off',
  cancelled: true,
};

/**
 * Lands the task branch on the base branch (a conflict is left in the
 * worktree for the developer to resolve). A base checked out in the main
 * worktree is updated with `merge --ff-only` so the user's files follow;
 * otherwise the ref moves with a compare-and-swap.
 */
const repoLocks = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier git operation taken under this lock on the same repository (in this process). */
function serialized<T>(repo: string, fn: () => Promise<T>): Promise<T> {
  const previous = repoLocks.get(repo) ?? Promise.resolve();
  const next = previous.catch(() => {}).then(fn);
  repoLocks.set(repo, next);
  return next.finally(() => {
    if (repoLocks.get(repo) === next) repoLocks.delete(repo);
  });
}

/**
 * How a finished branch lands: `merge` merges the base into the branch and
 * fast-forwards the base to it; `rebase` replays the branch on the base
 * (linear history); `merge-commit` gives the base a merge commit of the branch.
 */
export type MergeStrategy = 'merge' | 'rebase' | 'merge-commit';

/**
 * Lands `branch` on `base`. `stillWanted` is asked under the repository's lock right before the
 * base moves (each round): a landing whose task was cancelled meanwhile changes nothing.
 */
export function landBranch(
  repo: string,
  worktree: string,
  branch: string,
  base: string,
  strategy: MergeStrategy = 'merge',
  stillWanted: () => Promise<boolean> = async () => true,
): Promise<MergeOutcome> {
  return serialized(repo, async () => {
    if (await hasOrigin(repo)) return landThroughOrigin(repo, worktree, branch, base, strategy, stillWanted);
    // Another process may move the base between our merge and our fast-forward: merge again.
    for (let round = 0; ; round += 1) {
      if (!(await stillWanted())) return CALLED_OFF;
      const outcome = await landOnce(repo, worktree, branch, base, strategy);
      if (outcome.ok || outcome.conflicts.length || round >= 4) return outcome;
      if (!(await baseMovedSince(repo, worktree, base))) return outcome;
    }
  });
}

async function baseMovedSince(repo: string, worktree: string, base: string): Promise<boolean> {
  const r = await gitRaw(worktree, ['merge-base', '--is-ancestor', `refs/heads/${base}`, 'HEAD']);
  return r.code !== 0;
}

/** Leaves the base merged into the worktree, or the conflict in progress there for the developer. */
async function mergeBaseInto(worktree: string, base: string): Promise<MergeOutcome | null> {
  const merged = await gitRaw(worktree, ['merge', '--no-edit', '-q', base]);
  if (merged.code === 0) return null;
  const conflicts = (await gitRaw(worktree, ['diff', '--name-only', '--diff-filter=U'])).stdout
    .split('\n')
    .filter(Boolean);
  // The merge stays in progress, conflict markers and all: the developer's rework resolves
  // it, and the commit after that run completes the merge onto the new base.
  if (!conflicts.length) await gitRaw(worktree, ['merge', '--abort']);
  return { ok: false, conflicts, message: merged.stderr.trim() || merged.stdout.trim() };
}

async function landOnce(
  repo: string,
  worktree: string,
  branch: string,
  base: string,
  strategy: MergeStrategy,
): Promise<MergeOutcome> {
  const onBase = (await currentBranch(repo)) === base;
  // The usual case: the base has not moved since the branch left it. Merging or rebasing onto it
  // would change nothing, so the base is fast-forwarded to the branch at once (one git call);
  // when it cannot be (the base moved), the whole landing below runs.
  const head = strategy === 'merge-commit' || !onBase ? null : headCommit(worktree);
  if (head && (await gitRaw(repo, ['merge', '--ff-only', '-q', head])).code === 0)
    return { ok: true, commit: head };
  let tip: string;
  if (strategy === 'merge-commit') {
    const tree = await gitRaw(worktree, ['merge-tree', '--write-tree', base, 'HEAD']);
    if (tree.code !== 0)
      return (
        (await mergeBaseInto(worktree, base)) ?? { ok: false, conflicts: [], message: 'merge-tree failed' }
      );
    const baseTip = (await git(worktree, ['rev-parse', `refs/heads/${base}`])).trim();
    tip = (
      await git(worktree, [
        'commit-tree',
        tree.stdout.split('\n')[0]!.trim(),
        '-p',
        baseTip,
        '-p',
        'HEAD',
        '-m',
        `Merge branch '${branch}'`,
      ])
    ).trim();
  } else {
    if (strategy === 'rebase') {
      const rebased = await gitRaw(worktree, ['rebase', '-q', base]);
      if (rebased.code !== 0) {
        await gitRaw(worktree, ['rebase', '--abort']);
        const conflict = await mergeBaseInto(worktree, base);
        if (conflict) return conflict;
      }
    } else {
      const conflict = await mergeBaseInto(worktree, base);
      if (conflict) return conflict;
    }
    tip = (await git(worktree, ['rev-parse', 'HEAD'])).trim();
  }
  if (onBase) {
    const ff = await gitRaw(repo, ['merge', '--ff-only', '-q', tip]);
    if (ff.code !== 0)
      return {
        ok: false,
        conflicts: [],
        message: ff.stderr.trim() || 'fast-forward of the base branch failed',
      };
  } else {
    const old = (await git(repo, ['rev-parse', `refs/heads/${base}`])).trim();
    const moved = await gitRaw(repo, ['update-ref', `refs/heads/${base}`, tip, old]);
    if (moved.code !== 0) return { ok: false, conflicts: [], message: moved.stderr.trim() };
  }
  return { ok: true, commit: tip };
}

/** Removes a worktree only when it holds nothing uncommitted: its commits stay on the task branch. */
export async function removeCleanWorktree(
  repo: string,
  path: string,
  log: { info(m: string): void },
  /** Runs once the worktree is known clean, right before it goes (orch.yaml `hooks.before_remove`). */
  beforeRemove?: () => Promise<void>,
): Promise<boolean> {
  readyWorktrees.delete(path);
  if (!existsSync(path)) return false;
  if (beforeRemove) {
    // Clean first, then the hook: whatever the hook leaves (a cache, a report) goes with the worktree.
    const status = await gitRaw(path, ['status', '--porcelain']);
    if (status.code !== 0 || status.stdout.trim() !== '') {
      log.info(`kept worktree ${path}: it holds uncommitted work`);
      return false;
    }
    await beforeRemove();
    readyWorktrees.delete(path);
    return (await gitRaw(repo, ['worktree', 'remove', '--force', path])).code === 0;
  }
  // Without --force, git itself refuses a worktree with modified or untracked files: no status first.
  const removed = await gitRaw(repo, ['worktree', 'remove', path]);
  if (removed.code !== 0 && /modified or untracked/.test(removed.stderr)) {
    log.info(`kept worktree ${path}: it holds uncommitted work`);
  }
  return removed.code === 0;
}

export async function removeWorktree(repo: string, path: string): Promise<void> {
  readyWorktrees.delete(path);
  await gitRaw(repo, ['worktree', 'remove', '--force', path]);
}

// ---------------------------------------------------------------- the origin remote
//
// With an `origin` remote, the remote's base branch is the one that counts: workers on other
// machines land there too. Every landing and every handoff (runtime/handoff.ts) that touches a
// repository runs under one lock per repository, so fetches and pushes of one process never race
// for the same refs.

let originEnabled = true;
const originKnown = new Map<string, boolean>();

/** Turns the use of `origin` (handoff and pushing landings) on or off for this process. */
export function configureOrigin(opts: { enabled: boolean }): void {
  originEnabled = opts.enabled;
}

/** Whether orch pushes to and fetches from the repository's `origin` (looked up once per process). */
export async function hasOrigin(repo: string): Promise<boolean> {
  if (!originEnabled) return false;
  let known = originKnown.get(repo);
  if (known === undefined) {
    known = (await gitRaw(repo, ['remote', 'get-url', 'origin'])).code === 0;
    originKnown.set(repo, known);
  }
  return known;
}

/** Runs `fn` after every earlier landing or handoff on the same repository (in this process). */
export const withRepoLock = <T>(repo: string, fn: () => Promise<T>): Promise<T> => serialized(repo, fn);

const revParse = async (dir: string, ref: string): Promise<string | null> => {
  const r = await gitRaw(dir, ['rev-parse', '-q', '--verify', `${ref}^{commit}`]);
  return r.code === 0 ? r.stdout.trim() : null;
};

export const isAncestor = async (dir: string, ancestor: string, of: string): Promise<boolean> =>
  (await gitRaw(dir, ['merge-base', '--is-ancestor', ancestor, of])).code === 0;

/**
 * `git fetch` as handoffs and landings run it: quiet, and without starting background
 * maintenance after every fetch (a worker fetches before every stage).
 */
export const FETCH = ['-c', 'maintenance.auto=false', 'fetch', '-q'] as const;

/** The refspec that fetches origin's `branch` into its remote-tracking ref. */
export const trackingSpec = (branch: string): string => `+refs/heads/${branch}:refs/remotes/origin/${branch}`;

/** The commits `refs` point at, in one git call; a ref that does not exist is absent from the map. */
export async function refTips(dir: string, refs: readonly string[]): Promise<Map<string, string>> {
  const out = await git(dir, ['for-each-ref', '--format=%(refname) %(objectname)', ...refs]);
  const tips = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [ref, sha] = line.trim().split(' ');
    if (ref && sha && refs.includes(ref)) tips.set(ref, sha);
  }
  return tips;
}

/**
 * Fast-forwards the local base to origin's (as last fetched) when it is
 * behind. A local base with commits origin lacks is left alone (a user's own
 * unpushed work is never thrown away). Call under {@link withRepoLock}.
 */
export async function fastForwardBase(
  repo: string,
  base: string,
  known?: Map<string, string>,
): Promise<void> {
  const tips = known ?? (await refTips(repo, [`refs/heads/${base}`, `refs/remotes/origin/${base}`]));
  const remote = tips.get(`refs/remotes/origin/${base}`);
  const local = tips.get(`refs/heads/${base}`);
  if (!remote || remote === local) return;
  if (local && !(await isAncestor(repo, local, remote))) return;
  if ((await currentBranch(repo)) === base) {
    await gitRaw(repo, ['merge', '--ff-only', '-q', remote]);
  } else {
    await gitRaw(repo, ['update-ref', `refs/heads/${base}`, remote, local ?? '']);
  }
}

/** Fetches origin's base, then {@link fastForwardBase}. Call under {@link withRepoLock}. */
export async function refreshBaseFromOrigin(repo: string, base: string): Promise<void> {
  await git(repo, [...FETCH, 'origin', trackingSpec(base)]);
  await fastForwardBase(repo, base);
}

/** Puts the local base back where it was before a landing that origin refused. */
async function restoreBase(repo: string, base: string, to: string, from: string): Promise<void> {
  if ((await currentBranch(repo)) === base) {
    // --keep moves the checkout back without touching the user's uncommitted files.
    await gitRaw(repo, ['reset', '-q', '--keep', to]);
  } else {
    await gitRaw(repo, ['update-ref', `refs/heads/${base}`, to, from]);
  }
}

/** origin refused the push because its branch moved (including a push that raced ours there). */
const pushRejected = (stderr: string): boolean =>
  /\[rejected\]|non-fast-forward|fetch first|stale info|cannot lock ref|failed to update ref/.test(stderr);

/** Rounds of fetch-land-push before a landing gives up on an origin whose base keeps moving. */
const ORIGIN_LANDING_ROUNDS = 20;

/**
 * Lands on origin's base: the local base is brought up to origin's, the
 * branch lands on it as usual, and the base is pushed. When origin's base
 * moved meanwhile (another worker landed), the push is refused: the local
 * landing is taken back and done again on the new base.
 */
async function landThroughOrigin(
  repo: string,
  worktree: string,
  branch: string,
  base: string,
  strategy: MergeStrategy,
  stillWanted: () => Promise<boolean>,
): Promise<MergeOutcome> {
  for (let round = 1; ; round += 1) {
    if (!(await stillWanted())) return CALLED_OFF;
    await refreshBaseFromOrigin(repo, base);
    const before = await revParse(repo, `refs/heads/${base}`);
    const outcome = await landOnce(repo, worktree, branch, base, strategy);
    if (!outcome.ok) return outcome;
    const pushed = await gitRaw(repo, ['push', '-q', 'origin', `refs/heads/${base}:refs/heads/${base}`]);
    if (pushed.code === 0) return outcome;
    if (!pushRejected(pushed.stderr)) {
      if (before) await restoreBase(repo, base, before, outcome.commit);
      throw new OrchError(
        'git_failed',
        `git push of ${base} to origin failed in ${repo}: ${pushed.stderr.trim()}`,
        {
          context: { repo, base },
        },
      );
    }
    if (before) await restoreBase(repo, base, before, outcome.commit);
    if (round >= ORIGIN_LANDING_ROUNDS) {
      return {
        ok: false,
        conflicts: [],
        message: `origin's ${base} moved on every one of ${round} landing attempts: ${pushed.stderr.trim()}`,
        contended: true,
      };
    }
  }
}

// ---------------------------------------------------------------- development candidates
//
// `pipeline.development.candidates: N` works N developer runs side by side, each in a worktree
// of its own (`<task worktree>-c<i>`, branch `<task branch>-c<i>`) made from the task branch.
// Once run and judged by the stage's gates, each candidate's commit is kept under
// `refs/orch/candidates/<key>/<attempt>/<i>` (the record, and what the reviewer chooses from),
// and its worktree and branch are removed; the chosen one becomes the task branch.

export const candidateWorktree = (worktree: string, i: number): string => `${worktree}-c${i}`;
export const candidateBranch = (key: string, i: number): string => `${taskBranch(key)}-c${i}`;
export const candidateRef = (key: string, attempt: number, i: number): string =>
  `refs/orch/candidates/${safeName(key)}/${attempt}/${i}`;

/**
 * A fresh worktree for candidate `i` at the task branch's tip: whatever an earlier (or
 * interrupted) candidate left at that path or on that branch is replaced.
 */
export async function makeCandidateWorktree(
  repo: string,
  path: string,
  branch: string,
  from: string,
): Promise<void> {
  await serialized(repo, async () => {
    readyWorktrees.delete(path);
    if (existsSync(path)) await gitRaw(repo, ['worktree', 'remove', '--force', path]);
    await gitRaw(repo, ['worktree', 'prune']);
    mkdirSync(dirname(path), { recursive: true });
    await git(repo, ['worktree', 'add', '-q', '--force', '-B', branch, path, from]);
  });
}

/** Keeps the candidate's commit under `ref`, then removes its worktree and its branch. */
export async function retireCandidate(
  repo: string,
  path: string,
  branch: string,
  ref: string,
): Promise<void> {
  await serialized(repo, async () => {
    const head = (await gitRaw(path, ['rev-parse', 'HEAD'])).stdout.trim();
    if (head) await git(repo, ['update-ref', ref, head]);
    readyWorktrees.delete(path);
    await gitRaw(repo, ['worktree', 'remove', '--force', path]);
    await gitRaw(repo, ['branch', '-q', '-D', branch]);
  });
}

/** The diff a candidate's commit makes on top of `from` (the task branch it was made from). */
export async function candidateDiff(repo: string, from: string, ref: string): Promise<string> {
  const r = await gitRaw(repo, ['diff', '--no-color', '--no-ext-diff', `${from}...${ref}`]);
  return r.code === 0 ? r.stdout : '';
}

/** Moves the task worktree (and its branch) to the chosen candidate's commit. */
export async function adoptCandidate(worktree: string, ref: string): Promise<void> {
  await git(worktree, ['reset', '-q', '--hard', ref]);
}
