/**
 * A fake Linear GraphQL API (`POST /graphql`) on loopback, answering the
 * documents `@linear/sdk` really sends. Each request's document is executed
 * with graphql-js against a small schema that names Linear's types and the
 * fields this fake knows: graphql-js skips fields and fragments it has no
 * definition for (there is no validation step), so the SDK's large fragments
 * are answered with the fields that matter and the rest left out. The
 * variable types a document declares that the schema lacks (`IssueFilter`,
 * `PaginationOrderBy`, …) are added as pass-through scalars, and the
 * resolvers read the filters as plain JSON.
 *
 * Auth is Linear's personal API key (`Authorization: <key>`, no scheme).
 * Errors follow Linear's shape: `errors[].extensions.{type,code}`.
 * Pages are capped at `pageSize` items whatever `first` asks, so a client
 * that does not follow `pageInfo` misses issues.
 */
import { randomUUID } from 'node:crypto';
import {
  buildSchema,
  execute,
  GraphQLError,
  parse,
  visit,
  type DocumentNode,
  type GraphQLSchema,
} from 'graphql';
import { startFakeService, type FakeService } from './kit.ts';

const SCHEMA = `
scalar DateTime
scalar JSONObject
scalar IssueFilter
scalar TeamFilter
scalar WorkflowStateFilter
scalar IssueLabelFilter
scalar UserFilter
scalar IssueUpdateInput
scalar CommentCreateInput
scalar IssueLabelCreateInput

type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }

type Team { id: String! key: String! name: String! createdAt: DateTime! updatedAt: DateTime! }
type TeamConnection { nodes: [Team!]! pageInfo: PageInfo! }

type WorkflowState {
  id: String! name: String! type: String! color: String! position: Float!
  createdAt: DateTime! updatedAt: DateTime! team: Team
}
type WorkflowStateConnection { nodes: [WorkflowState!]! pageInfo: PageInfo! }

type IssueLabel {
  id: String! name: String! color: String! isGroup: Boolean!
  createdAt: DateTime! updatedAt: DateTime! team: Team
}
type IssueLabelConnection { nodes: [IssueLabel!]! pageInfo: PageInfo! }

type User {
  id: String! name: String! displayName: String! email: String! active: Boolean!
  url: String! createdAt: DateTime! updatedAt: DateTime!
}
type UserConnection { nodes: [User!]! pageInfo: PageInfo! }

type Reaction { id: String! emoji: String! }
type IssueSharedAccess {
  isShared: Boolean! sharedWithCount: Int! viewerHasOnlySharedAccess: Boolean!
  disallowedIssueFields: [String!]! sharedWithUsers: [User!]!
}

type Issue {
  id: String! identifier: String! number: Float! title: String! description: String url: String!
  priority: Float! priorityLabel: String! labelIds: [String!]! previousIdentifiers: [String!]!
  reactionData: JSONObject! reactions: [Reaction!]! sharedAccess: IssueSharedAccess!
  createdAt: DateTime! updatedAt: DateTime! team: Team! state: WorkflowState! assignee: User
  inverseRelations(first: Int, after: String): IssueRelationConnection!
}
type IssueConnection { nodes: [Issue!]! pageInfo: PageInfo! }
type IssueRelation { id: String! type: String! issue: Issue! relatedIssue: Issue! }
type IssueRelationConnection { nodes: [IssueRelation!]! pageInfo: PageInfo! }

type Comment { id: String! body: String! url: String! createdAt: DateTime! updatedAt: DateTime! issue: Issue }

type IssuePayload { success: Boolean! lastSyncId: Float! issue: Issue }
type CommentPayload { success: Boolean! lastSyncId: Float! comment: Comment! }
type IssueLabelPayload { success: Boolean! lastSyncId: Float! issueLabel: IssueLabel! }

type Query {
  issues(filter: IssueFilter, first: Int, after: String): IssueConnection!
  issue(id: String!): Issue!
  teams(filter: TeamFilter, first: Int, after: String): TeamConnection!
  workflowStates(filter: WorkflowStateFilter, first: Int, after: String): WorkflowStateConnection!
  issueLabels(filter: IssueLabelFilter, first: Int, after: String): IssueLabelConnection!
  users(filter: UserFilter, first: Int, after: String): UserConnection!
}
type Mutation {
  issueUpdate(id: String!, input: IssueUpdateInput!): IssuePayload!
  commentCreate(input: CommentCreateInput!): CommentPayload!
  issueLabelCreate(input: IssueLabelCreateInput!): IssueLabelPayload!
}
`;

interface TeamRec {
  id: string;
  key: string;
  name: string;
  nextNumber: number;
}
interface StateRec {
  id: string;
  teamId: string;
  name: string;
  type: string;
  position: number;
}
interface LabelRec {
  id: string;
  /** Null for a workspace label. */
  teamId: string | null;
  name: string;
}
interface UserRec {
  id: string;
  name: string;
  displayName: string;
  email: string;
}
interface CommentRec {
  id: string;
  body: string;
  createdAt: string;
}
interface IssueRec {
  id: string;
  teamId: string;
  number: number;
  title: string;
  description: string | null;
  stateId: string;
  labelIds: string[];
  assigneeId: string | null;
  createdAt: string;
  updatedAt: string;
  comments: CommentRec[];
}

/** An issue as a test reads it back: names, not ids. */
export interface LinearIssueView {
  id: string;
  identifier: string;
  title: string;
  state: string;
  labels: string[];
  assignee: string | null;
  comments: string[];
}

export interface NewLinearIssue {
  title: string;
  description?: string;
  /** A state name of the team (default: the first, `Backlog`). */
  state?: string;
  /** Label names; missing labels are created on the team. */
  labels?: string[];
  /** A user's email. */
  assignee?: string;
  /** The team key (default: the fake's first team). */
  team?: string;
}

export interface LinearFake {
  /** The GraphQL endpoint, for `new LinearClient({ apiUrl })`. */
  apiUrl: string;
  service: FakeService;
  /** Operation names in the order they were answered (auth failures excluded). */
  operations: string[];
  addUser(u: { name: string; displayName?: string; email: string }): UserRec;
  /** A label of the team (`team` key) or of the workspace (`team: null`). */
  addLabel(name: string, team?: string | null): LabelRec;
  createIssue(i: NewLinearIssue): LinearIssueView;
  /** By id or identifier; throws when there is none. */
  issue(idOrIdentifier: string): LinearIssueView;
  /** Records that `blocker` blocks `blocked` (ids or identifiers), as a person would in Linear. */
  block(blocker: string, blocked: string): void;
  /** Moves an issue to a state of its team, by name. */
  setState(idOrIdentifier: string, state: string): void;
  close(): Promise<void>;
}

const DEFAULT_STATES: [string, string][] = [
  ['Backlog', 'backlog'],
  ['Todo', 'unstarted'],
  ['In Progress', 'started'],
  ['In Review', 'started'],
  ['Done', 'completed'],
  ['Canceled', 'canceled'],
];

export async function startLinearFake(
  opts: { apiKey?: string; teams?: string[]; pageSize?: number } = {},
): Promise<LinearFake> {
  const apiKey = opts.apiKey ?? 'lin_api_fake';
  const pageSize = opts.pageSize ?? 2;
  const teams: TeamRec[] = [];
  const states: StateRec[] = [];
  const labels: LabelRec[] = [];
  const users: UserRec[] = [];
  const issues: IssueRec[] = [];
  /** `issueId` blocks `relatedIssueId` (type `blocks`), as Linear stores an issue relation. */
  const relations: { id: string; type: string; issueId: string; relatedIssueId: string }[] = [];
  const operations: string[] = [];
  let clock = Date.parse('2025-01-01T00:00:00Z');
  const now = () => new Date((clock += 1000)).toISOString();
  let syncId = 1;

  for (const key of opts.teams ?? ['ENG', 'OPS']) {
    const team: TeamRec = { id: randomUUID(), key, name: `${key} team`, nextNumber: 1 };
    teams.push(team);
    DEFAULT_STATES.forEach(([name, type], position) =>
      states.push({ id: randomUUID(), teamId: team.id, name, type, position }),
    );
  }

  const teamById = (id: string) => teams.find((t) => t.id === id)!;
  const stateById = (id: string) => states.find((s) => s.id === id)!;
  const identifierOf = (i: IssueRec) => `${teamById(i.teamId).key}-${i.number}`;
  const findIssue = (idOrIdentifier: string) =>
    issues.find((i) => i.id === idOrIdentifier || identifierOf(i) === idOrIdentifier);

  // --- GraphQL objects (graphql-js reads properties; functions are called lazily) ---
  const stamp = { createdAt: '2025-01-01T00:00:00.000Z', updatedAt: '2025-01-01T00:00:00.000Z' };
  const teamObj = (t: TeamRec) => ({ id: t.id, key: t.key, name: t.name, ...stamp });
  const stateObj = (s: StateRec) => ({
    ...s,
    color: '#bec2c8',
    ...stamp,
    team: () => teamObj(teamById(s.teamId)),
  });
  const labelObj = (l: LabelRec) => ({
    id: l.id,
    name: l.name,
    color: '#5e6ad2',
    isGroup: false,
    ...stamp,
    team: () => (l.teamId ? teamObj(teamById(l.teamId)) : null),
  });
  const userObj = (u: UserRec) => ({
    ...u,
    active: true,
    url: `https://linear.app/acme/profiles/${u.displayName}`,
    ...stamp,
  });
  const issueObj = (i: IssueRec) => ({
    id: i.id,
    identifier: identifierOf(i),
    number: i.number,
    title: i.title,
    description: i.description,
    url: `https://linear.app/acme/issue/${identifierOf(i)}`,
    priority: 0,
    priorityLabel: 'No priority',
    labelIds: i.labelIds,
    previousIdentifiers: [],
    reactionData: {},
    reactions: [],
    sharedAccess: {
      isShared: false,
      sharedWithCount: 0,
      viewerHasOnlySharedAccess: false,
      disallowedIssueFields: [],
      sharedWithUsers: [],
    },
    createdAt: i.createdAt,
    updatedAt: i.updatedAt,
    team: () => teamObj(teamById(i.teamId)),
    state: () => stateObj(stateById(i.stateId)),
    assignee: () => {
      const u = users.find((x) => x.id === i.assigneeId);
      return u ? userObj(u) : null;
    },
    inverseRelations: () => {
      const nodes = relations
        .filter((r) => r.relatedIssueId === i.id)
        .map((r) => ({
          id: r.id,
          type: r.type,
          issue: () => issueObj(findIssue(r.issueId)!),
          relatedIssue: () => issueObj(i),
        }));
      return {
        nodes,
        pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null },
      };
    },
  });

  // --- Filters, as views Linear's filter language walks ---
  const teamView = (t: TeamRec) => ({ id: t.id, key: t.key, name: t.name });
  const stateView = (s: StateRec) => ({
    id: s.id,
    name: s.name,
    type: s.type,
    team: teamView(teamById(s.teamId)),
  });
  const labelView = (l: LabelRec) => ({
    id: l.id,
    name: l.name,
    team: l.teamId ? teamView(teamById(l.teamId)) : null,
  });
  const userView = (u: UserRec) => ({ ...u, isMe: false });
  const issueView = (i: IssueRec) => ({
    id: i.id,
    number: i.number,
    title: i.title,
    team: teamView(teamById(i.teamId)),
    state: stateView(stateById(i.stateId)),
    labels: i.labelIds.map((id) => labelView(labels.find((l) => l.id === id)!)),
    assignee: users.find((u) => u.id === i.assigneeId) ?? null,
    hasBlockedByRelations: relations.some((r) => r.type === 'blocks' && r.relatedIssueId === i.id),
  });

  function page<R, V>(all: R[], view: (r: R) => V, obj: (r: R) => unknown, args: ConnArgs) {
    const matching = all.filter((r) => matches(view(r), args.filter));
    const start = args.after ? matching.findIndex((r) => (r as { id: string }).id === args.after) + 1 : 0;
    const size = Math.min(args.first ?? 50, pageSize);
    const nodes = matching.slice(start, start + size);
    const last = nodes.at(-1) as { id: string } | undefined;
    return {
      nodes: nodes.map(obj),
      pageInfo: {
        hasNextPage: start + size < matching.length,
        hasPreviousPage: start > 0,
        startCursor: (nodes[0] as { id: string } | undefined)?.id ?? null,
        endCursor: last?.id ?? null,
      },
    };
  }

  const root = {
    issues: (a: ConnArgs) => page(issues, issueView, issueObj, a),
    issue: ({ id }: { id: string }) => issueObj(findIssue(id) ?? notFound('Issue')),
    teams: (a: ConnArgs) => page(teams, teamView, teamObj, a),
    workflowStates: (a: ConnArgs) => page(states, stateView, stateObj, a),
    issueLabels: (a: ConnArgs) => page(labels, labelView, labelObj, a),
    users: (a: ConnArgs) => page(users, userView, userObj, a),
    issueUpdate: ({ id, input }: { id: string; input: Record<string, unknown> }) => {
      const issue = findIssue(id) ?? notFound('Issue');
      updateIssue(issue, input);
      return { success: true, lastSyncId: syncId++, issue: issueObj(issue) };
    },
    commentCreate: ({ input }: { input: { issueId?: string; body?: string } }) => {
      const issue = findIssue(input.issueId ?? '') ?? notFound('Issue');
      if (!input.body) throw inputError('body should not be empty');
      const comment = { id: randomUUID(), body: input.body, createdAt: now() };
      issue.comments.push(comment);
      return {
        success: true,
        lastSyncId: syncId++,
        comment: {
          ...comment,
          updatedAt: comment.createdAt,
          url: `https://linear.app/acme/issue/${identifierOf(issue)}#comment-${comment.id}`,
          issue: () => issueObj(issue),
        },
      };
    },
    issueLabelCreate: ({ input }: { input: { name?: string; teamId?: string } }) => {
      if (!input.name) throw inputError('name should not be empty');
      if (input.teamId && !teams.some((t) => t.id === input.teamId)) notFound('Team');
      if (labels.some((l) => l.name === input.name && l.teamId === (input.teamId ?? null)))
        throw inputError(`duplicate label name ${input.name}`);
      const label = { id: randomUUID(), teamId: input.teamId ?? null, name: input.name };
      labels.push(label);
      return { success: true, lastSyncId: syncId++, issueLabel: labelObj(label) };
    },
  };

  function updateIssue(issue: IssueRec, input: Record<string, unknown>): void {
    const known = ['stateId', 'addedLabelIds', 'removedLabelIds', 'labelIds', 'assigneeId', 'title'];
    const unknown = Object.keys(input).filter((k) => !known.includes(k));
    if (unknown.length) throw inputError(`unknown input fields ${unknown.join(', ')}`);
    if (typeof input.stateId === 'string') {
      const state = states.find((s) => s.id === input.stateId);
      if (!state || state.teamId !== issue.teamId) notFound('WorkflowState');
      issue.stateId = state.id;
    }
    const labelIds = (v: unknown) => {
      const ids = (v ?? []) as string[];
      for (const id of ids) if (!labels.some((l) => l.id === id)) notFound('IssueLabel');
      return ids;
    };
    if (input.labelIds) issue.labelIds = [...labelIds(input.labelIds)];
    for (const id of labelIds(input.addedLabelIds)) if (!issue.labelIds.includes(id)) issue.labelIds.push(id);
    const removed = labelIds(input.removedLabelIds);
    issue.labelIds = issue.labelIds.filter((id) => !removed.includes(id));
    if ('assigneeId' in input) issue.assigneeId = (input.assigneeId as string | null) ?? null;
    if (typeof input.title === 'string') issue.title = input.title;
    issue.updatedAt = now();
  }

  const schemas = new Map<string, GraphQLSchema>();
  /** The schema plus a pass-through scalar for each variable type the document declares and it lacks. */
  function schemaFor(doc: DocumentNode): GraphQLSchema {
    const base = schemas.get('') ?? buildSchema(SCHEMA);
    schemas.set('', base);
    const missing = new Set<string>();
    visit(doc, {
      VariableDefinition(node) {
        visit(node.type, {
          NamedType(t) {
            if (!base.getType(t.name.value)) missing.add(t.name.value);
          },
        });
      },
    });
    const key = [...missing].sort().join(',');
    let schema = schemas.get(key);
    if (!schema) {
      schema = buildSchema(SCHEMA + [...missing].map((n) => `scalar ${n}\n`).join(''));
      schemas.set(key, schema);
    }
    return schema;
  }

  const service = await startFakeService(
    {
      token: apiKey,
      // Linear answers a bad key itself, with a GraphQL error body (below).
      authorized: () => true,
    },
    (app) => {
      app.post('/graphql', async (c) => {
        if (c.req.header('authorization') !== apiKey) {
          return c.json(
            {
              errors: [
                {
                  message: 'Authentication required, not authenticated',
                  extensions: {
                    type: 'authentication error',
                    code: 'AUTHENTICATION_ERROR',
                    userPresentableMessage: 'You need to authenticate to access this operation.',
                  },
                },
              ],
            },
            401,
          );
        }
        const body = (await c.req.json()) as { query?: string; variables?: Record<string, unknown> };
        let doc: DocumentNode;
        try {
          doc = parse(body.query ?? '');
        } catch (err) {
          return c.json(
            { errors: [{ message: (err as Error).message, extensions: { code: 'GRAPHQL_PARSE_FAILED' } }] },
            400,
          );
        }
        for (const def of doc.definitions) {
          if (def.kind === 'OperationDefinition') operations.push(def.name?.value ?? def.operation);
        }
        const result = await execute({
          schema: schemaFor(doc),
          document: doc,
          rootValue: root,
          variableValues: body.variables ?? {},
        });
        return c.json(result, 200);
      });
    },
  );

  return {
    apiUrl: `${service.url}/graphql`,
    service,
    operations,
    addUser(u) {
      const user = {
        id: randomUUID(),
        name: u.name,
        displayName: u.displayName ?? u.name.toLowerCase(),
        email: u.email,
      };
      users.push(user);
      return user;
    },
    addLabel,
    createIssue(i) {
      const team = teamByKey(i.team ?? teams[0]!.key);
      const state = states.find((s) => s.teamId === team.id && s.name === (i.state ?? 'Backlog'));
      if (!state) throw new Error(`linear fake: no state ${i.state} in ${team.key}`);
      const labelIds = (i.labels ?? []).map(
        (name) =>
          labels.find((l) => l.name === name && (l.teamId === team.id || l.teamId === null))?.id ??
          addLabel(name, team.key).id,
      );
      const assignee = i.assignee ? users.find((u) => u.email === i.assignee) : undefined;
      if (i.assignee && !assignee) throw new Error(`linear fake: no user ${i.assignee}`);
      const at = now();
      const rec: IssueRec = {
        id: randomUUID(),
        teamId: team.id,
        number: team.nextNumber++,
        title: i.title,
        description: i.description ?? null,
        stateId: state.id,
        labelIds,
        assigneeId: assignee?.id ?? null,
        createdAt: at,
        updatedAt: at,
        comments: [],
      };
      issues.push(rec);
      return view(rec);
    },
    issue(idOrIdentifier) {
      const rec = findIssue(idOrIdentifier);
      if (!rec) throw new Error(`linear fake: no issue ${idOrIdentifier}`);
      return view(rec);
    },
    block(blocker, blocked) {
      const a = findIssue(blocker);
      const b = findIssue(blocked);
      if (!a || !b) throw new Error(`linear fake: no issue ${blocker} or ${blocked}`);
      relations.push({ id: randomUUID(), type: 'blocks', issueId: a.id, relatedIssueId: b.id });
    },
    setState(idOrIdentifier, state) {
      const rec = findIssue(idOrIdentifier);
      const to = rec && states.find((s) => s.teamId === rec.teamId && s.name === state);
      if (!rec || !to) throw new Error(`linear fake: no issue ${idOrIdentifier} or state ${state}`);
      rec.stateId = to.id;
      rec.updatedAt = now();
    },
    close: () => service.close(),
  };

  function addLabel(name: string, team?: string | null): LabelRec {
    const teamId = team === null ? null : teamByKey(team ?? teams[0]!.key).id;
    const label = { id: randomUUID(), teamId, name };
    labels.push(label);
    return label;
  }

  function teamByKey(key: string): TeamRec {
    const team = teams.find((t) => t.key === key);
    if (!team) throw new Error(`linear fake: no team ${key}`);
    return team;
  }

  function view(i: IssueRec): LinearIssueView {
    return {
      id: i.id,
      identifier: identifierOf(i),
      title: i.title,
      state: stateById(i.stateId).name,
      labels: i.labelIds.map((id) => labels.find((l) => l.id === id)!.name),
      assignee: users.find((u) => u.id === i.assigneeId)?.email ?? null,
      comments: i.comments.map((c) => c.body),
    };
  }
}

interface ConnArgs {
  filter?: Record<string, unknown> | null;
  first?: number | null;
  after?: string | null;
}

function notFound(entity: string): never {
  throw new GraphQLError(`Entity not found: ${entity}`, {
    extensions: {
      type: 'invalid input',
      code: 'INPUT_ERROR',
      userError: true,
      userPresentableMessage: `Could not find referenced ${entity}.`,
    },
  });
}

function inputError(message: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: { type: 'invalid input', code: 'INPUT_ERROR', userError: true },
  });
}

// --- Linear's filter language, the part the adapters use ---

const COMPARATORS = new Set(['eq', 'neq', 'in', 'nin', 'eqIgnoreCase', 'neqIgnoreCase', 'null']);

/** Whether a view satisfies a Linear filter (`and`/`or`, comparators, relation and collection filters). */
export function matches(value: unknown, filter: Record<string, unknown> | null | undefined): boolean {
  if (!filter) return true;
  return Object.entries(filter).every(([key, cond]) => {
    if (key === 'and') return (cond as Record<string, unknown>[]).every((f) => matches(value, f));
    if (key === 'or') return (cond as Record<string, unknown>[]).some((f) => matches(value, f));
    const field = (value as Record<string, unknown> | null)?.[key];
    const c = cond as Record<string, unknown>;
    if (Object.keys(c).every((k) => COMPARATORS.has(k))) return compare(field, c);
    if (Array.isArray(field)) {
      const unknownKeys = Object.keys(c).filter((k) => !['some', 'every', 'none'].includes(k));
      if (unknownKeys.length)
        throw new Error(`linear fake: collection filter ${unknownKeys.join(',')} on ${key}`);
      const sub = (f: unknown) => (v: unknown) => matches(v, f as Record<string, unknown>);
      return (
        (c.some === undefined || field.some(sub(c.some))) &&
        (c.every === undefined || field.every(sub(c.every))) &&
        (c.none === undefined || !field.some(sub(c.none)))
      );
    }
    if (field === undefined) throw new Error(`linear fake: filter on unknown field ${key}`);
    return field !== null && matches(field, c);
  });
}

function compare(field: unknown, c: Record<string, unknown>): boolean {
  const lower = (v: unknown) => (typeof v === 'string' ? v.toLowerCase() : v);
  if ('eq' in c && field !== c.eq) return false;
  if ('neq' in c && field === c.neq) return false;
  if ('in' in c && !(c.in as unknown[]).includes(field)) return false;
  if ('nin' in c && (c.nin as unknown[]).includes(field)) return false;
  if ('eqIgnoreCase' in c && lower(field) !== lower(c.eqIgnoreCase)) return false;
  if ('neqIgnoreCase' in c && lower(field) === lower(c.neqIgnoreCase)) return false;
  if ('null' in c && (field === null || field === undefined) !== c.null) return false;
  return true;
}
