/**
 * What in a worktree git (or orch, on git's behalf) refuses to commit. The
 * worktree is the agent's: when what it left cannot be committed, that is the
 * stage's failure, with feedback the developer can act on — not an error of
 * orch's to retry until the task escalates as `internal_error`.
 *
 * Git's behaviour (2.39) decides the checks: `git add -A` over a directory
 * holding a repository of its own (an agent ran `git init` or `git clone`
 * there) fails — "'sub/' does not have a commit checked out" — when that
 * repository has no commit, and when it has one, silently stages a gitlink
 * (mode 160000) in place of its files: the work in it never reaches the
 * branch, and the landed base would point at a commit that exists nowhere
 * else. Neither is what the agent meant, so both are refused before `git add`.
 * A file over {@link MAX_COMMIT_FILE_BYTES} is refused too: git would hash all
 * of it (a 10 GB sparse file takes minutes) into a blob no forge accepts.
 * FIFOs, sockets and devices are not refused: git skips them, so they never
 * reach a commit (orch reads worktree files through worktree-files.ts).
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { OrchError } from '../errors.ts';

/** Largest file orch commits, bytes: 100 MiB, the largest file GitHub accepts in a push. */
export const MAX_COMMIT_FILE_BYTES = 100 * 1024 * 1024;

/** A path in the worktree and why it cannot be committed. */
export interface RefusedPath {
  path: string;
  why: 'nested_repository' | 'too_large';
  /** For `too_large`: the file's size, bytes. */
  bytes?: number;
}

/**
 * The worktree holds something that cannot be committed. `feedback` is written for the agent
 * that made it; `gitMessage` is git's own words when git refused (null when orch refused first).
 */
export class GitRefusal extends OrchError {
  readonly worktree: string;
  readonly paths: readonly RefusedPath[];
  readonly gitMessage: string | null;
  readonly feedback: string;
  constructor(
    worktree: string,
    opts: { paths?: RefusedPath[]; gitMessage?: string | null; cause?: unknown },
  ) {
    const paths = opts.paths ?? [];
    const gitMessage = opts.gitMessage?.trim() || null;
    const feedback = refusalFeedback(paths, gitMessage);
    super('git_refused', `the work in ${worktree} cannot be committed: ${feedback}`, {
      context: { worktree, paths, gitMessage },
      ...(opts.cause !== undefined ? { cause: opts.cause } : {}),
    });
    this.name = 'GitRefusal';
    this.worktree = worktree;
    this.paths = paths;
    this.gitMessage = gitMessage;
    this.feedback = feedback;
  }
}

/** What the developer is told: each refused path and what to do about it, then git's words. */
export function refusalFeedback(paths: readonly RefusedPath[], gitMessage: string | null): string {
  const lines = paths.map((p) =>
    p.why === 'nested_repository'
      ? `${p.path} is a git repository of its own (it holds a .git): its files cannot be committed to the task's branch. Remove ${p.path}.git and keep the files, or move that repository out of the worktree; do not run git init or git clone inside the worktree.`
      : `${p.path} is ${p.bytes} bytes, over the ${MAX_COMMIT_FILE_BYTES} bytes orch commits in one file: delete it or make it smaller (generated or downloaded data does not belong in the branch).`,
  );
  if (gitMessage) lines.push(`git refused to commit the work: ${gitMessage}`);
  return lines.join('\n') || 'git refused to commit the work';
}

/** One entry of `git status --porcelain=v1 -z`. */
export interface StatusEntry {
  /** The two status letters (`??` untracked, ` M` modified, `R ` renamed…). */
  xy: string;
  path: string;
}

/** Parses `git status --porcelain=v1 -z` (a rename's or copy's source path is skipped). */
export function parseStatusZ(output: string): StatusEntry[] {
  const entries: StatusEntry[] = [];
  const fields = output.split('\0');
  for (let i = 0; i < fields.length; i += 1) {
    const field = fields[i]!;
    if (field.length < 4) continue;
    const xy = field.slice(0, 2);
    entries.push({ xy, path: field.slice(3) });
    // `R  new\0old\0`: the source comes as the next field.
    if (xy.includes('R') || xy.includes('C')) i += 1;
  }
  return entries;
}

/** Stats at a time while looking for large files. */
const STAT_BATCH = 64;

/**
 * What in a worktree's status (`git status --porcelain=v1 -z --untracked-files=all`) orch refuses
 * to commit: an untracked directory (with `-uall` git lists untracked files one by one and shows
 * a directory only when it is a repository of its own), and any file to be added over the size
 * limit. Never opens a file.
 */
export async function refusedPaths(
  worktree: string,
  entries: readonly StatusEntry[],
): Promise<RefusedPath[]> {
  const refused: RefusedPath[] = [];
  const toStat: string[] = [];
  for (const e of entries) {
    if (e.xy === '??' && e.path.endsWith('/')) refused.push({ path: e.path, why: 'nested_repository' });
    else if (!e.xy.includes('D')) toStat.push(e.path);
  }
  for (let i = 0; i < toStat.length; i += STAT_BATCH) {
    const batch = toStat.slice(i, i + STAT_BATCH);
    const stats = await Promise.all(batch.map((p) => lstat(join(worktree, p)).catch(() => null)));
    stats.forEach((st, j) => {
      if (st?.isFile() && st.size > MAX_COMMIT_FILE_BYTES)
        refused.push({ path: batch[j]!, why: 'too_large', bytes: st.size });
    });
  }
  return refused;
}

/**
 * Whether a failed `git add`/`git commit` is about the machine (disk full, read-only, out of
 * memory, killed on its timeout), which a retry may cure, rather than about what the worktree holds.
 */
export function machineTrouble(stderr: string): boolean {
  return (
    stderr.trim() === '' ||
    /No space left on device|Disk quota exceeded|Read-only file system|Cannot allocate memory|Out of memory|index\.lock/i.test(
      stderr,
    )
  );
}
