/**
 * The Linear tracker, over `@linear/sdk`. One team is one orch project:
 * tasks are the team's issues, `id` is Linear's issue id and `key` its
 * identifier (`ENG-42`). Writes name workflow states and labels; the adapter
 * resolves names to the team's ids. Issues come back from the SDK with ids
 * for their state, labels and assignee, so a read fetches those by id in
 * three more queries (not one per issue), and their blockers (the issues
 * with a `blocks` relation to them that are not completed or canceled) in
 * one more per 100 issues.
 */
import { LinearClient, type Issue } from '@linear/sdk';
import { z } from 'zod';
import { describeIssues } from '../webhook-kit.ts';
import {
  TrackerError,
  type ExternalBlocker,
  type ExternalTask,
  type StatusUpdate,
  type TaskQuery,
  type Tracker,
} from '../types.ts';
import { linearError } from './errors.ts';

export interface LinearTrackerOptions {
  /** A personal API key (`lin_api_…`, from ORCH_LINEAR_API_KEY) or an OAuth access token (`Bearer …`). */
  apiKey: string;
  /** The team key, e.g. `ENG`. */
  team: string;
  /** The GraphQL endpoint (default https://api.linear.app/graphql). */
  apiUrl?: string;
  /** Bound on one operation, all its requests included (default 60 s). */
  timeoutMs?: number;
}

type IssuesVars = NonNullable<Parameters<LinearClient['issues']>[0]>;
type IssueFilter = NonNullable<IssuesVars['filter']>;
type UserFilter = NonNullable<IssueFilter['assignee']>;

/** Linear's largest page; fewer requests for the same issues. */
const PAGE = 100;

/** The issues among `$ids` that something blocks, with the relations pointing at them. */
const BLOCKERS_QUERY = `query OrchBlockers($filter: IssueFilter, $first: Int, $after: String) {
  issues(filter: $filter, first: $first, after: $after) {
    nodes { id inverseRelations(first: 100) { nodes { type issue { id identifier state { type } } } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const BlockersPage = z.object({
  issues: z.object({
    nodes: z.array(
      z.object({
        id: z.string(),
        inverseRelations: z.object({
          nodes: z.array(
            z.object({
              type: z.string(),
              issue: z.object({
                id: z.string(),
                identifier: z.string(),
                state: z.object({ type: z.string() }),
              }),
            }),
          ),
        }),
      }),
    ),
    pageInfo: z.object({ hasNextPage: z.boolean(), endCursor: z.string().nullable() }),
  }),
});

/** Workflow state types of finished work: a blocker in one of them no longer blocks. */
const FINISHED = new Set(['completed', 'canceled']);

export function createLinearTracker(opts: LinearTrackerOptions): Tracker {
  if (!opts.apiKey) throw new TrackerError('linear: no API key (set ORCH_LINEAR_API_KEY)', 'auth');
  if (!opts.team) throw new TrackerError('linear: no team key configured', 'invalid');
  const bearer = opts.apiKey.startsWith('Bearer ');
  const client = new LinearClient({
    ...(bearer ? { accessToken: opts.apiKey } : { apiKey: opts.apiKey }),
    ...(opts.apiUrl ? { apiUrl: opts.apiUrl } : {}),
  });
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const teamKey = opts.team;
  let teamId: string | undefined;

  /** Runs one operation under the timeout, every failure turned into a `TrackerError`. */
  async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TrackerError(`linear: ${what} timed out after ${timeoutMs} ms`, 'unavailable')),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (err) {
      throw linearError(err, what);
    } finally {
      clearTimeout(timer);
    }
  }

  async function resolveTeamId(): Promise<string> {
    if (teamId) return teamId;
    const teams = await client.teams({ filter: { key: { eq: teamKey } } });
    const team = teams.nodes[0];
    if (!team)
      throw new TrackerError(`linear: no team with key ${teamKey} is visible to this API key`, 'invalid');
    teamId = team.id;
    return team.id;
  }

  /** Issues as tasks: their states, labels and assignees fetched by id, once each. */
  async function toTasks(issues: Issue[]): Promise<ExternalTask[]> {
    const ids = (pick: (i: Issue) => (string | undefined)[]) => [
      ...new Set(issues.flatMap(pick).filter((x): x is string => !!x)),
    ];
    const stateIds = ids((i) => [i.stateId]);
    const labelIds = ids((i) => i.labelIds ?? []);
    const userIds = ids((i) => [i.assigneeId]);
    const [states, labels, users] = await Promise.all([
      stateIds.length
        ? client.paginate(client.workflowStates, { filter: { id: { in: stateIds } }, first: PAGE })
        : [],
      labelIds.length
        ? client.paginate(client.issueLabels, { filter: { id: { in: labelIds } }, first: PAGE })
        : [],
      userIds.length ? client.paginate(client.users, { filter: { id: { in: userIds } }, first: PAGE }) : [],
    ]);
    const blockers = await blockersOf(issues.map((i) => i.id));
    const stateName = new Map(states.map((s) => [s.id, s.name]));
    const labelName = new Map(labels.map((l) => [l.id, l.name]));
    const userName = new Map(users.map((u) => [u.id, u.displayName || u.email || u.name]));
    return issues.map((i) => ({
      id: i.id,
      key: i.identifier,
      title: i.title,
      description: i.description ?? '',
      url: i.url,
      state: (i.stateId && stateName.get(i.stateId)) || '',
      labels: (i.labelIds ?? []).map((id) => labelName.get(id)).filter((n): n is string => !!n),
      assignees: i.assigneeId ? [userName.get(i.assigneeId) ?? i.assigneeId] : [],
      updatedAt: i.updatedAt.toISOString(),
      blockedBy: blockers.get(i.id) ?? [],
    }));
  }

  /** The unfinished issues blocking each of `ids` (only those with any are keys). */
  async function blockersOf(ids: string[]): Promise<Map<string, ExternalBlocker[]>> {
    const out = new Map<string, ExternalBlocker[]>();
    for (let at = 0; at < ids.length; at += PAGE) {
      let after: string | null = null;
      do {
        const filter = { id: { in: ids.slice(at, at + PAGE) }, hasBlockedByRelations: { eq: true } };
        const res = await client.client.rawRequest(BLOCKERS_QUERY, { filter, first: PAGE, after });
        const page = BlockersPage.safeParse(res.data);
        if (!page.success) {
          throw new TrackerError(
            `linear: the blockers query answered ${describeIssues(page.error)}`,
            'invalid',
          );
        }
        for (const node of page.data.issues.nodes) {
          const open = node.inverseRelations.nodes.filter(
            (r) => r.type === 'blocks' && !FINISHED.has(r.issue.state.type),
          );
          out.set(
            node.id,
            open.map((r) => ({ id: r.issue.id, key: r.issue.identifier })),
          );
        }
        const { hasNextPage, endCursor } = page.data.issues.pageInfo;
        after = hasNextPage ? endCursor : null;
      } while (after);
    }
    return out;
  }

  /** The team's workflow state named `name` (case-insensitive), or `invalid` naming the ones there are. */
  async function stateIdOf(name: string): Promise<string> {
    const states = await client.paginate(client.workflowStates, {
      filter: { team: { key: { eq: teamKey } } },
      first: PAGE,
    });
    const state =
      states.find((s) => s.name === name) ?? states.find((s) => s.name.toLowerCase() === name.toLowerCase());
    if (!state) {
      throw new TrackerError(
        `linear: team ${teamKey} has no workflow state "${name}" (it has: ${states.map((s) => s.name).join(', ')})`,
        'invalid',
      );
    }
    return state.id;
  }

  /**
   * Label ids by lower-cased name, among the team's and the workspace's labels
   * (Linear label names are unique without regard to case); missing names
   * are absent from the map.
   */
  async function labelIdsByName(names: string[]): Promise<Map<string, string>> {
    const labels = await client.paginate(client.issueLabels, {
      filter: {
        and: [
          { or: names.map((name) => ({ name: { eqIgnoreCase: name } })) },
          { or: [{ team: { key: { eq: teamKey } } }, { team: { null: true } }] },
        ],
      },
      first: PAGE,
    });
    // A team label wins over a workspace label of the same name.
    const byName = new Map<string, string>();
    for (const l of labels) {
      const key = l.name.toLowerCase();
      if (l.teamId || !byName.has(key)) byName.set(key, l.id);
    }
    return byName;
  }

  return {
    kind: 'linear',

    list: (query: TaskQuery) =>
      call('list issues', async () => {
        const filter: IssueFilter = { team: { key: { eq: teamKey } } };
        if (query.states?.length) filter.state = { name: { in: query.states } };
        if (query.labels?.length) {
          filter.and = query.labels.map((name) => ({ labels: { some: { name: { eqIgnoreCase: name } } } }));
        }
        if (query.assignee) filter.assignee = assigneeFilter(query.assignee);
        const issues = await client.paginate(client.issues, { filter, first: PAGE });
        return toTasks(issues);
      }),

    get: (id: string) =>
      call(`get issue ${id}`, async () => {
        try {
          const issue = await client.issue(id);
          const [task] = await toTasks([issue]);
          return task ?? null;
        } catch (err) {
          const e = linearError(err, `get issue ${id}`);
          if (e.kind === 'not_found') return null;
          throw e;
        }
      }),

    update: (id: string, update: StatusUpdate) =>
      call(`update issue ${id}`, async () => {
        // One read of the issue decides what is left to send.
        const issue = await client.issue(id);
        const input: { stateId?: string; addedLabelIds?: string[]; removedLabelIds?: string[] } = {};
        if (update.state) {
          const stateId = await stateIdOf(update.state);
          if (stateId !== issue.stateId) input.stateId = stateId;
        }
        const add = update.addLabels ?? [];
        const remove = update.removeLabels ?? [];
        if (add.length || remove.length) {
          const ids = await labelIdsByName([...add, ...remove]);
          const has = new Set(issue.labelIds ?? []);
          for (const name of add) {
            // Linear only applies labels that exist: create a missing one on the team.
            if (!ids.has(name.toLowerCase())) {
              const created = await client.createIssueLabel({ name, teamId: await resolveTeamId() });
              if (!created.success || !created.issueLabelId) {
                throw new TrackerError(
                  `linear: could not create label "${name}" on team ${teamKey}`,
                  'invalid',
                );
              }
              ids.set(name.toLowerCase(), created.issueLabelId);
            }
          }
          const added = [...new Set(add.map((n) => ids.get(n.toLowerCase())!))].filter((x) => !has.has(x));
          if (added.length) input.addedLabelIds = added;
          const removed = remove
            .map((n) => ids.get(n.toLowerCase()))
            .filter((x): x is string => !!x && has.has(x) && !added.includes(x));
          if (removed.length) input.removedLabelIds = removed;
        }
        if (Object.keys(input).length === 0) return;
        const payload = await client.updateIssue(id, input);
        if (!payload.success) throw new TrackerError(`linear: issue ${id} was not updated`, 'invalid');
      }),

    comment: (id: string, body: string) =>
      call(`comment on issue ${id}`, async () => {
        const payload = await client.createComment({ issueId: id, body });
        if (!payload.success || !payload.commentId) {
          throw new TrackerError(`linear: the comment on issue ${id} was not created`, 'invalid');
        }
        return { id: payload.commentId };
      }),
  };
}

/** `me` is the API key's user; an address is matched on email, anything else on display name or name. */
function assigneeFilter(assignee: string): UserFilter {
  if (assignee === 'me') return { isMe: { eq: true } };
  if (assignee.includes('@')) return { email: { eqIgnoreCase: assignee } };
  return { or: [{ displayName: { eqIgnoreCase: assignee } }, { name: { eqIgnoreCase: assignee } }] };
}
