/**
 * Gitea and Forgejo as a forge: pull requests, the combined commit status
 * (Gitea/Forgejo Actions and external CI both report commit statuses; there is
 * no checks API), merges.
 */
import { combineSignals, type CiSignal } from '../ci.ts';
import { httpError } from '../http.ts';
import type { CiState, Forge, PullRequest } from '../types.ts';
import { TrackerError } from '../types.ts';
import {
  createGiteaClient,
  messageOf,
  type GiteaClient,
  type GiteaOptions,
  type GiteaPull,
} from './client.ts';

interface GiteaCombinedStatus {
  /** `''` (no status yet) or the worst of the statuses. */
  state: string;
  total_count: number;
  statuses: { context: string; status: string }[] | null;
}

const toPullRequest = (p: GiteaPull): PullRequest => ({
  number: p.number,
  url: p.html_url,
  head: p.head.ref,
  base: p.base.ref,
  state: p.merged ? 'merged' : p.state === 'closed' ? 'closed' : 'open',
});

/** A Gitea commit status (its state is in `status`); `warning` and `skipped` do not fail a commit. */
export function commitStatusSignal(s: { context: string; status: string }): CiSignal {
  if (s.status === 'failure' || s.status === 'error') return { name: s.context, outcome: 'failed' };
  if (s.status === 'success' || s.status === 'warning' || s.status === 'skipped') {
    return { name: s.context, outcome: 'passed' };
  }
  return { name: s.context, outcome: 'pending' };
}

async function findOpenPull(client: GiteaClient, head: string, base: string): Promise<PullRequest | null> {
  const pulls = await client.http.getAllPages<GiteaPull>(`${client.repoPath}/pulls?state=open`, {
    pageSize: client.pageSize,
  });
  const found = pulls.find((p) => p.head.ref === head && p.base.ref === base);
  return found ? toPullRequest(found) : null;
}

export function createGiteaForge(opts: GiteaOptions): Forge {
  const client = createGiteaClient(opts);
  const { http, kind, repoPath } = client;

  return {
    kind,

    async openPullRequest({ head, base, title, body }): Promise<PullRequest> {
      const open = await findOpenPull(client, head, base);
      if (open) return open;
      try {
        const res = await http.request<GiteaPull>('POST', `${repoPath}/pulls`, { head, base, title, body });
        return toPullRequest(res.body);
      } catch (err) {
        // 409 "pull request already exists": another caller opened it in between.
        if (err instanceof TrackerError && err.status === 409) {
          const raced = await findOpenPull(client, head, base);
          if (raced) return raced;
        }
        throw err;
      }
    },

    async ciStatus(ref: string): Promise<{ state: CiState; summary: string }> {
      const { body } = await http.get<GiteaCombinedStatus>(
        `${repoPath}/commits/${encodeURIComponent(ref)}/status?limit=${client.pageSize}`,
      );
      const statuses = body.statuses ?? [];
      const result = combineSignals(statuses.map(commitStatusSignal));
      if (statuses.length < body.total_count) {
        // More statuses than one page: the server's combined state decides, the page only names some.
        const outcome = commitStatusSignal({ context: '', status: body.state }).outcome;
        const state: CiState =
          outcome === 'failed' ? 'failure' : outcome === 'pending' ? 'pending' : 'success';
        return {
          state,
          summary: `${result.summary} (${statuses.length} of ${body.total_count} statuses read)`,
        };
      }
      return result;
    },

    async mergePullRequest(number, method) {
      const path = `${repoPath}/pulls/${number}/merge`;
      const res = await http.send('POST', path, { Do: method });
      // 405: not mergeable (already merged, checks, style not allowed); 409: conflict or head moved.
      if (res.status === 405 || res.status === 409) {
        return { merged: false, message: messageOf(res.text) || `${kind} answered ${res.status}` };
      }
      if (res.status < 200 || res.status > 299)
        throw httpError(kind, 'POST', path, res.status, res.headers, res.text);
      const { body: pull } = await http.get<GiteaPull>(`${repoPath}/pulls/${number}`);
      return { merged: true, ...(pull.merge_commit_sha ? { sha: pull.merge_commit_sha } : {}) };
    },
  };
}
