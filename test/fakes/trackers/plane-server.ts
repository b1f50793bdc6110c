/**
 * A fake Plane REST API (v1) on loopback: one workspace and its projects,
 * work items (also under their older name `issues/`), states, labels and
 * comments, in memory. Shapes follow Plane's public API: `X-API-Key` auth,
 * cursor pagination (`per_page`, `cursor` = `size:page:is_prev`, and the
 * `next_cursor`/`next_page_results`/`results` envelope) capped at `pageSize`
 * items, `expand=state,labels,assignees` turning ids into objects, PATCH with
 * the full `labels` id list, `{"error": …}` bodies for 404s, and
 * `X-RateLimit-Remaining`/`X-RateLimit-Reset` on every answer.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { Context } from 'hono';
import { startFakeService, type FakeService } from './kit.ts';

interface StateRec {
  id: string;
  name: string;
  group: string;
}
interface LabelRec {
  id: string;
  name: string;
  color: string;
}
interface UserRec {
  id: string;
  display_name: string;
  email: string;
  first_name: string;
  last_name: string;
}
interface CommentRec {
  id: string;
  comment_html: string;
  created_at: string;
}
interface ItemRec {
  id: string;
  sequence_id: number;
  name: string;
  description_html: string;
  state: string;
  labels: string[];
  assignees: string[];
  created_at: string;
  updated_at: string;
  comments: CommentRec[];
  /** Ids of the work items that block this one (Plane's `blocked_by` relation). */
  blockedBy: string[];
}

/** A work item as a test reads it back: names, not ids. */
export interface PlaneItemView {
  id: string;
  key: string;
  name: string;
  state: string;
  labels: string[];
  assignees: string[];
  comments: string[];
}

export interface PlaneFake {
  url: string;
  service: FakeService;
  workspace: string;
  projectId: string;
  identifier: string;
  addUser(u: { display_name: string; email: string }): UserRec;
  createItem(i: {
    name: string;
    description_html?: string;
    state?: string;
    labels?: string[];
    assignees?: string[];
  }): PlaneItemView;
  item(id: string): PlaneItemView;
  /** Moves a work item to a state (by name), as a person would in Plane. */
  setState(id: string, state: string): void;
  /** Records that `blocker` blocks `blocked` (both work item ids), as the relations API does. */
  block(blocker: string, blocked: string): void;
  /** A delivery as Plane sends it for a work item: signed body and headers. */
  webhook(secret: string, itemId: string, action?: string): { headers: Headers; body: string };
  close(): Promise<void>;
}

const DEFAULT_STATES: [string, string][] = [
  ['Backlog', 'backlog'],
  ['Todo', 'unstarted'],
  ['In Progress', 'started'],
  ['In Review', 'started'],
  ['Done', 'completed'],
  ['Cancelled', 'cancelled'],
];

export async function startPlaneFake(
  opts: { token?: string; workspace?: string; identifier?: string; pageSize?: number } = {},
): Promise<PlaneFake> {
  const token = opts.token ?? 'plane_api_fake';
  const workspace = opts.workspace ?? 'acme';
  const identifier = opts.identifier ?? 'PROJ';
  const pageSize = opts.pageSize ?? 2;
  const projectId = randomUUID();
  const workspaceId = randomUUID();
  const states: StateRec[] = DEFAULT_STATES.map(([name, group]) => ({ id: randomUUID(), name, group }));
  const labels: LabelRec[] = [];
  const users: UserRec[] = [];
  const items: ItemRec[] = [];
  let nextSequence = 1;
  let clock = Date.parse('2025-01-01T00:00:00Z');
  const now = () => new Date((clock += 1000)).toISOString();
  let budget = 60;

  const project = () => ({
    id: projectId,
    identifier,
    name: 'Project',
    workspace: workspaceId,
    created_at: '2025-01-01T00:00:00Z',
    updated_at: '2025-01-01T00:00:00Z',
  });
  const stateOut = (s: StateRec) => ({ id: s.id, name: s.name, color: '#60646C', group: s.group });
  const labelOut = (l: LabelRec) => ({
    id: l.id,
    name: l.name,
    color: l.color,
    project: projectId,
    workspace: workspaceId,
  });
  const userOut = (u: UserRec) => ({ ...u, avatar: '', avatar_url: null });
  const itemOut = (i: ItemRec, expand: string[]) => ({
    id: i.id,
    name: i.name,
    description_html: i.description_html,
    description_stripped: i.description_html.replace(/<[^>]*>/g, ''),
    priority: 'none',
    sequence_id: i.sequence_id,
    created_at: i.created_at,
    updated_at: i.updated_at,
    project: projectId,
    workspace: workspaceId,
    parent: null,
    is_draft: false,
    archived_at: null,
    completed_at: null,
    state: expand.includes('state') ? stateOut(states.find((s) => s.id === i.state)!) : i.state,
    labels: expand.includes('labels')
      ? i.labels.map((id) => labelOut(labels.find((l) => l.id === id)!))
      : i.labels,
    assignees: expand.includes('assignees')
      ? i.assignees.map((id) => userOut(users.find((u) => u.id === id)!))
      : i.assignees,
  });

  const notFound = (c: Context, error = 'The requested resource does not exist.') => c.json({ error }, 404);
  const expandOf = (c: Context) => (c.req.query('expand') ?? '').split(',').filter(Boolean);

  /** Plane's cursor envelope over `all`, pages capped at `pageSize`. */
  function paginate<T>(c: Context, all: T[], out: (x: T) => unknown) {
    const perPage = Math.min(Number(c.req.query('per_page') ?? 100), 100, pageSize);
    const cursor = c.req.query('cursor');
    let page = 0;
    if (cursor) {
      const bits = cursor.split(':');
      if (bits.length !== 3 || !bits.every((b) => /^\d+$/.test(b))) {
        return c.json(
          { error: "Invalid cursor format: Cursor must be in the format 'value:offset:is_prev'" },
          400,
        );
      }
      page = Number(bits[1]);
    }
    const start = page * perPage;
    const results = all.slice(start, start + perPage);
    const hasNext = start + perPage < all.length;
    return c.json({
      grouped_by: null,
      sub_grouped_by: null,
      total_count: all.length,
      next_cursor: `${perPage}:${page + 1}:0`,
      prev_cursor: `${perPage}:${page - 1}:1`,
      next_page_results: hasNext,
      prev_page_results: page > 0,
      count: results.length,
      total_pages: Math.ceil(all.length / perPage),
      total_results: all.length,
      extra_stats: null,
      results: results.map(out),
    });
  }

  const service = await startFakeService(
    { token, authorized: (c, t) => c.req.header('x-api-key') === t },
    (app) => {
      app.use('*', async (c, next) => {
        await next();
        // Plane's throttle: 60 requests a minute per key, told on every answer.
        budget = Math.max(0, budget - 1);
        c.res.headers.set('x-ratelimit-remaining', String(budget));
        c.res.headers.set('x-ratelimit-reset', String(Math.ceil(Date.now() / 60_000) * 60));
      });
      const ws = '/api/v1/workspaces/:slug';
      const proj = `${ws}/projects/:pid`;
      const scoped =
        (h: (c: Context) => Response | Promise<Response>) =>
        (c: Context): Response | Promise<Response> =>
          c.req.param('slug') !== workspace ||
          (c.req.param('pid') !== undefined && c.req.param('pid') !== projectId)
            ? notFound(c)
            : h(c);
      const findItem = (c: Context) => items.find((i) => i.id === c.req.param('id'));

      app.get(
        `${proj}/`,
        scoped((c) => c.json(project())),
      );
      app.get(
        `${proj}/states/`,
        scoped((c) => paginate(c, states, stateOut)),
      );
      app.get(
        `${proj}/labels/`,
        scoped((c) => paginate(c, labels, labelOut)),
      );
      app.post(
        `${proj}/labels/`,
        scoped(async (c) => {
          const body = (await c.req.json()) as { name?: string; color?: string };
          if (!body.name) return c.json({ name: ['This field is required.'] }, 400);
          const dup = labels.find((l) => l.name === body.name);
          if (dup)
            return c.json(
              { error: 'Label with the same name already exists in the project', id: dup.id },
              409,
            );
          const label = { id: randomUUID(), name: body.name, color: body.color ?? '#000000' };
          labels.push(label);
          return c.json(labelOut(label), 201);
        }),
      );
      for (const kind of ['work-items', 'issues']) {
        app.get(
          `${proj}/${kind}/`,
          scoped((c) => paginate(c, items, (i) => itemOut(i, expandOf(c)))),
        );
        app.get(
          `${proj}/${kind}/:id/`,
          scoped((c) => {
            const item = findItem(c);
            return item ? c.json(itemOut(item, expandOf(c))) : notFound(c, 'Work item not found');
          }),
        );
        app.patch(
          `${proj}/${kind}/:id/`,
          scoped(async (c) => {
            const item = findItem(c);
            if (!item) return notFound(c, 'Work item not found');
            const body = (await c.req.json()) as { state?: string; labels?: string[]; name?: string };
            if (body.state !== undefined && !states.some((s) => s.id === body.state)) {
              return c.json({ state: [`Invalid pk "${body.state}" - object does not exist.`] }, 400);
            }
            const bad = (body.labels ?? []).find((id) => !labels.some((l) => l.id === id));
            if (bad) return c.json({ labels: [`Invalid pk "${bad}" - object does not exist.`] }, 400);
            if (body.state !== undefined) item.state = body.state;
            if (body.labels !== undefined) item.labels = [...new Set(body.labels)];
            if (body.name !== undefined) item.name = body.name;
            item.updated_at = now();
            return c.json(itemOut(item, []));
          }),
        );
        // The relations of a work item: every relation type, ids of the items on the other end.
        app.get(
          `${proj}/${kind}/:id/relations/`,
          scoped((c) => {
            const item = findItem(c);
            if (!item) return notFound(c, 'Work item not found');
            const blocking = items.filter((i) => i.blockedBy.includes(item.id)).map((i) => i.id);
            return c.json({
              blocking,
              blocked_by: item.blockedBy,
              duplicate: [],
              relates_to: [],
              start_after: [],
              start_before: [],
              finish_after: [],
              finish_before: [],
            });
          }),
        );
        app.post(
          `${proj}/${kind}/:id/comments/`,
          scoped(async (c) => {
            const item = findItem(c);
            if (!item) return notFound(c, 'Work item not found');
            const body = (await c.req.json()) as { comment_html?: string };
            if (!body.comment_html) return c.json({ comment_html: ['This field is required.'] }, 400);
            const comment = { id: randomUUID(), comment_html: body.comment_html, created_at: now() };
            item.comments.push(comment);
            return c.json(
              {
                ...comment,
                comment_stripped: body.comment_html.replace(/<[^>]*>/g, ''),
                issue: item.id,
                project: projectId,
                workspace: workspaceId,
                access: 'INTERNAL',
              },
              201,
            );
          }),
        );
      }
      app.get(
        `${ws}/work-items/:key/`,
        scoped((c) => {
          const m = /^(.+)-(\d+)$/.exec(c.req.param('key') ?? '');
          const item =
            m && m[1] === identifier ? items.find((i) => i.sequence_id === Number(m[2])) : undefined;
          return item ? c.json(itemOut(item, expandOf(c))) : notFound(c, 'Work item not found');
        }),
      );
    },
  );

  function view(i: ItemRec): PlaneItemView {
    return {
      id: i.id,
      key: `${identifier}-${i.sequence_id}`,
      name: i.name,
      state: states.find((s) => s.id === i.state)!.name,
      labels: i.labels.map((id) => labels.find((l) => l.id === id)!.name),
      assignees: i.assignees.map((id) => users.find((u) => u.id === id)!.email),
      comments: i.comments.map((c) => c.comment_html),
    };
  }

  return {
    url: service.url,
    service,
    workspace,
    projectId,
    identifier,
    addUser(u) {
      const [first = '', last = ''] = u.display_name.split(' ');
      const user = {
        id: randomUUID(),
        display_name: u.display_name,
        email: u.email,
        first_name: first,
        last_name: last,
      };
      users.push(user);
      return user;
    },
    createItem(i) {
      const state = states.find((s) => s.name === (i.state ?? 'Backlog'));
      if (!state) throw new Error(`plane fake: no state ${i.state}`);
      const labelIds = (i.labels ?? []).map((name) => {
        let label = labels.find((l) => l.name === name);
        if (!label) labels.push((label = { id: randomUUID(), name, color: '#000000' }));
        return label.id;
      });
      const assignees = (i.assignees ?? []).map((email) => {
        const u = users.find((x) => x.email === email);
        if (!u) throw new Error(`plane fake: no user ${email}`);
        return u.id;
      });
      const at = now();
      const rec: ItemRec = {
        id: randomUUID(),
        sequence_id: nextSequence++,
        name: i.name,
        description_html: i.description_html ?? '<p></p>',
        state: state.id,
        labels: labelIds,
        assignees,
        created_at: at,
        updated_at: at,
        comments: [],
        blockedBy: [],
      };
      items.push(rec);
      return view(rec);
    },
    item(id) {
      const rec = items.find((i) => i.id === id);
      if (!rec) throw new Error(`plane fake: no item ${id}`);
      return view(rec);
    },
    setState(id, state) {
      const rec = items.find((i) => i.id === id);
      const to = states.find((s) => s.name === state);
      if (!rec || !to) throw new Error(`plane fake: no item ${id} or state ${state}`);
      rec.state = to.id;
      rec.updated_at = now();
    },
    block(blocker, blocked) {
      const rec = items.find((i) => i.id === blocked);
      if (!rec || !items.some((i) => i.id === blocker))
        throw new Error(`plane fake: no item ${blocker} or ${blocked}`);
      rec.blockedBy.push(blocker);
      rec.updated_at = now();
    },
    webhook(secret, itemId, action = 'updated') {
      const rec = items.find((i) => i.id === itemId);
      if (!rec) throw new Error(`plane fake: no item ${itemId}`);
      const body = JSON.stringify({
        event: 'issue',
        action,
        webhook_id: randomUUID(),
        workspace_id: workspaceId,
        data: itemOut(rec, []),
        activity: { actor: null, field: 'state', new_value: null, old_value: null },
      });
      const headers = new Headers({
        'content-type': 'application/json',
        'user-agent': 'Autopilot',
        'x-plane-delivery': randomUUID(),
        'x-plane-event': 'issue',
        'x-plane-signature': createHmac('sha256', secret).update(body).digest('hex'),
      });
      return { headers, body };
    },
    close: () => service.close(),
  };
}
