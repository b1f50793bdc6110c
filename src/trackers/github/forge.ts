/**
 * GitHub as a forge: pull requests, the CI state of a commit (check runs and
 * commit statuses together, since a repository may use either), merges.
 */
import { combineSignals, type CiSignal } from '../ci.ts';
import type { CiState, Forge, PullRequest } from '../types.ts';
import {
  call,
  createGitHubClient,
  statusOf,
  toTrackerError,
  vendorMessage,
  type GitHubClient,
  type GitHubOptions,
} from './client.ts';

interface PullShape {
  number: number;
  html_url: string;
  state: string;
  merged_at: string | null;
  head: { ref: string };
  base: { ref: string };
}

const toPullRequest = (p: PullShape): PullRequest => ({
  number: p.number,
  url: p.html_url,
  head: p.head.ref,
  base: p.base.ref,
  state: p.merged_at ? 'merged' : p.state === 'closed' ? 'closed' : 'open',
});

/** Check run conclusions that fail (`stale`: GitHub gave up on a run that never finished). */
const FAILED_CONCLUSIONS = new Set([
  'failure',
  'cancelled',
  'timed_out',
  'action_required',
  'startup_failure',
  'stale',
]);

export function checkRunSignal(run: { name: string; status: string; conclusion: string | null }): CiSignal {
  if (run.status !== 'completed' || run.conclusion === null) return { name: run.name, outcome: 'pending' };
  return { name: run.name, outcome: FAILED_CONCLUSIONS.has(run.conclusion) ? 'failed' : 'passed' };
}

export function commitStatusSignal(status: { context: string; state: string }): CiSignal {
  const outcome =
    status.state === 'success'
      ? 'passed'
      : status.state === 'failure' || status.state === 'error'
        ? 'failed'
        : 'pending';
  return { name: status.context, outcome };
}

async function findOpenPull(client: GitHubClient, head: string, base: string): Promise<PullRequest | null> {
  const { octokit, owner, repo } = client;
  const pulls = await call(`GET open pull requests of ${client.slug} from ${head}`, () =>
    octokit.paginate(octokit.rest.pulls.list, {
      owner,
      repo,
      state: 'open',
      head: `${owner}:${head}`,
      base,
      per_page: 100,
    }),
  );
  const found = pulls.find((p) => p.head.ref === head && p.base.ref === base);
  return found ? toPullRequest(found) : null;
}

export function createGitHubForge(opts: GitHubOptions): Forge {
  const client = createGitHubClient(opts);
  const { octokit, owner, repo } = client;

  return {
    kind: 'github',

    async openPullRequest({ head, base, title, body }): Promise<PullRequest> {
      const open = await findOpenPull(client, head, base);
      if (open) return open;
      try {
        const { data } = await octokit.rest.pulls.create({ owner, repo, head, base, title, body });
        return toPullRequest(data);
      } catch (err) {
        // 422 "A pull request already exists": another caller opened it in between.
        if (statusOf(err) === 422) {
          const raced = await findOpenPull(client, head, base);
          if (raced) return raced;
        }
        throw toTrackerError(err, `POST pull request ${head} → ${base} in ${client.slug}`);
      }
    },

    async ciStatus(ref: string): Promise<{ state: CiState; summary: string }> {
      const runs = await call(`GET check runs of ${ref} in ${client.slug}`, () =>
        octokit.paginate(octokit.rest.checks.listForRef, { owner, repo, ref, per_page: 100 }),
      );
      // The combined status holds the latest status of each context.
      const { data: combined } = await call(`GET combined status of ${ref} in ${client.slug}`, () =>
        octokit.rest.repos.getCombinedStatusForRef({ owner, repo, ref, per_page: 100 }),
      );
      return combineSignals([...runs.map(checkRunSignal), ...combined.statuses.map(commitStatusSignal)]);
    },

    async mergePullRequest(number, method) {
      try {
        const { data } = await octokit.rest.pulls.merge({
          owner,
          repo,
          pull_number: number,
          merge_method: method,
        });
        return { merged: data.merged, sha: data.sha, message: data.message };
      } catch (err) {
        // 405: not mergeable (conflict, failing required checks, method not allowed); 409: the head moved.
        const status = statusOf(err);
        if (status === 405 || status === 409) return { merged: false, message: vendorMessage(err) };
        throw toTrackerError(err, `PUT merge of pull request #${number} in ${client.slug}`);
      }
    },
  };
}
