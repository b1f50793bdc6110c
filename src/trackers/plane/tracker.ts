/**
 * The Plane tracker, over Plane's REST API v1. One Plane project is one orch
 * project: tasks are its work items, `id` is the work item's UUID and `key`
 * the project identifier and sequence number (`PROJ-12`). Plane's v1 list
 * has no filters, so the project's items are read in pages (with their
 * state, labels and assignees expanded) and filtered here. Writes name
 * states and labels; they are resolved to the project's ids, and a label
 * that does not exist yet is created. A work item's blockers are its
 * `blocked_by` relations to unfinished items of the same project, read for
 * each item the import takes (one request each).
 */
import { z } from 'zod';
import { HttpClient, Ignored } from '../http.ts';
import { labelChanges } from '../labels.ts';
import {
  TrackerError,
  type ExternalBlocker,
  type ExternalTask,
  type StatusUpdate,
  type TaskQuery,
  type Tracker,
} from '../types.ts';

export interface PlaneTrackerOptions {
  /** Plane's address: `https://api.plane.so` for Plane Cloud, your host when self-hosted (a trailing `/api/v1` is dropped). */
  baseUrl: string;
  /** An API token (X-API-Key), from ORCH_PLANE_API_TOKEN. */
  token: string;
  /** The workspace slug (in Plane's URLs: `app.plane.so/<slug>/…`). */
  workspace: string;
  /** The project's UUID. */
  project: string;
  /** The web app, for task links (default: app.plane.so for Plane Cloud, else `baseUrl`). */
  webUrl?: string;
  timeoutMs?: number;
}

const PlaneState = z.object({
  id: z.string(),
  name: z.string(),
  /** backlog, unstarted, started, completed or cancelled. */
  group: z.string().optional(),
});
const PlaneLabel = z.object({ id: z.string(), name: z.string() });
const PlaneUser = z.object({
  id: z.string(),
  display_name: z.string().optional(),
  email: z.string().optional(),
  first_name: z.string().optional(),
  last_name: z.string().optional(),
});
type PlaneUser = z.infer<typeof PlaneUser>;

/** A work item as Plane returns it, with `expand=state,labels,assignees` or without (ids). */
const PlaneItem = z.object({
  id: z.string(),
  name: z.string(),
  sequence_id: z.number(),
  description_html: z.string().nullable().optional(),
  description_stripped: z.string().nullable().optional(),
  updated_at: z.string(),
  state: z.union([PlaneState, z.string()]).nullable(),
  labels: z.array(z.union([PlaneLabel, z.string()])),
  assignees: z.array(z.union([PlaneUser, z.string()])),
});
type PlaneItem = z.infer<typeof PlaneItem>;

const Page = <T extends z.ZodType>(item: T) =>
  z.object({
    results: z.array(item),
    next_cursor: z.string().nullable().optional(),
    next_page_results: z.boolean().optional(),
  });

/** A work item's relations: ids of the items on the other end, by type. */
const Relations = z.object({ blocked_by: z.array(z.string()).default([]) }).loose();

const FINISHED_GROUPS = new Set(['completed', 'cancelled']);
const idOf = (x: { id: string } | string) => (typeof x === 'string' ? x : x.id);

const EXPAND = 'expand=state,labels,assignees';
/** Plane's largest page. */
const PER_PAGE = 100;

export function createPlaneTracker(opts: PlaneTrackerOptions): Tracker {
  if (!opts.token) throw new TrackerError('plane: no API token (set ORCH_PLANE_API_TOKEN)', 'auth');
  for (const key of ['baseUrl', 'workspace', 'project'] as const) {
    if (!opts[key]) throw new TrackerError(`plane: no ${key} configured`, 'invalid');
  }
  // The site; an API root given by mistake is cut back to it.
  const root = opts.baseUrl.replace(/\/+$/, '').replace(/\/api\/v1$/, '');
  const http = new HttpClient({
    baseUrl: `${root}/api/v1`,
    headers: { 'x-api-key': opts.token },
    service: 'plane',
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  });
  const ws = `/workspaces/${encodeURIComponent(opts.workspace)}`;
  const proj = `${ws}/projects/${encodeURIComponent(opts.project)}`;
  const webUrl = (opts.webUrl ?? defaultWebUrl(root)).replace(/\/+$/, '');
  let identifier: Promise<string> | undefined;

  /** Every item of a paginated list, following `next_cursor` while Plane says there are more. */
  async function all<T extends z.ZodType>(path: string, item: T): Promise<z.output<T>[]> {
    const out: z.output<T>[] = [];
    const seen = new Set<string>();
    const page = Page(item);
    let cursor: string | null = null;
    for (;;) {
      const sep = path.includes('?') ? '&' : '?';
      const q: string = `${sep}per_page=${PER_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const { body } = await http.get(path + q, page);
      out.push(...body.results);
      const next: string | null | undefined = body.next_cursor;
      if (!body.next_page_results || !next) return out;
      // A cursor seen before would loop forever: Plane changed under us or misbehaves.
      if (seen.has(next)) throw new TrackerError(`plane: GET ${path} repeated cursor ${next}`, 'invalid');
      seen.add(next);
      cursor = next;
    }
  }

  /** The project's identifier (the `PROJ` of `PROJ-12`), asked once; a failed ask is asked again next time. */
  function projectIdentifier(): Promise<string> {
    identifier ??= http
      .get(`${proj}/`, z.object({ identifier: z.string().min(1) }))
      .then(({ body }) => body.identifier);
    identifier.catch(() => (identifier = undefined));
    return identifier;
  }

  async function toTask(item: PlaneItem): Promise<ExternalTask> {
    const key = `${await projectIdentifier()}-${item.sequence_id}`;
    return {
      id: item.id,
      key,
      title: item.name,
      // description_stripped keeps HTML entities and loses line breaks: convert the HTML instead.
      description: item.description_html
        ? htmlToText(item.description_html)
        : (item.description_stripped ?? ''),
      url: `${webUrl}/${opts.workspace}/projects/${opts.project}/issues/${item.id}`,
      state: typeof item.state === 'string' ? item.state : (item.state?.name ?? ''),
      labels: item.labels.map((l) => (typeof l === 'string' ? l : l.name)),
      assignees: item.assignees.map((u) => (typeof u === 'string' ? u : userName(u))),
      updatedAt: item.updated_at,
    };
  }

  function itemPath(id: string): string {
    // A readable key (PROJ-12) is served by the workspace-level route; a UUID by the project's.
    return /^[A-Za-z0-9]+-\d+$/.test(id)
      ? `${ws}/work-items/${encodeURIComponent(id)}/`
      : `${proj}/work-items/${encodeURIComponent(id)}/`;
  }

  async function stateIdOf(name: string): Promise<string> {
    const states = await all(`${proj}/states/`, PlaneState);
    const state =
      states.find((s) => s.name === name) ?? states.find((s) => s.name.toLowerCase() === name.toLowerCase());
    if (!state) {
      throw new TrackerError(
        `plane: project ${opts.project} has no state "${name}" (it has: ${states.map((s) => s.name).join(', ')})`,
        'invalid',
      );
    }
    return state.id;
  }

  /** The item's label ids after adding and removing by name; a label to add that does not exist is created. */
  async function newLabelIds(current: string[], add: string[], remove: string[]): Promise<string[]> {
    const labels = await all(`${proj}/labels/`, PlaneLabel);
    const idOf = (name: string) => labels.find((l) => l.name === name)?.id;
    const ids = new Set(current);
    for (const name of add) {
      let id = idOf(name);
      if (!id) {
        const { body } = await http.request('POST', `${proj}/labels/`, PlaneLabel, { name });
        labels.push(body);
        id = body.id;
      }
      ids.add(id);
    }
    for (const name of remove) {
      const id = idOf(name);
      if (id) ids.delete(id);
    }
    return [...ids];
  }

  /** The ids of the unfinished items of this project blocking `id`; `known` holds items already read. */
  async function blockersOf(id: string, known: Map<string, PlaneItem>): Promise<ExternalBlocker[]> {
    const { body } = await http.get(`${proj}/work-items/${encodeURIComponent(id)}/relations/`, Relations);
    const out: ExternalBlocker[] = [];
    for (const blocker of body.blocked_by) {
      let item = known.get(blocker);
      if (!item) {
        try {
          item = (await http.get(`${proj}/work-items/${encodeURIComponent(blocker)}/?${EXPAND}`, PlaneItem))
            .body;
        } catch (err) {
          // Another project's item: not one orch can import.
          if (err instanceof TrackerError && err.kind === 'not_found') continue;
          throw err;
        }
      }
      const group = typeof item.state === 'object' ? item.state?.group : undefined;
      if (group && FINISHED_GROUPS.has(group)) continue;
      out.push({ id: item.id, key: (await toTask(item)).key });
    }
    return out;
  }

  return {
    kind: 'plane',

    async list(query: TaskQuery) {
      const items = await all(`${proj}/work-items/?${EXPAND}`, PlaneItem);
      const known = new Map(items.map((i) => [i.id, i]));
      const tasks: ExternalTask[] = [];
      for (const item of items) {
        const task = await toTask(item);
        if (!matchesQuery(task, query, item)) continue;
        tasks.push({ ...task, blockedBy: await blockersOf(item.id, known) });
      }
      return tasks;
    },

    async get(id: string) {
      let item: PlaneItem;
      try {
        item = (await http.get(`${itemPath(id)}?${EXPAND}`, PlaneItem)).body;
      } catch (err) {
        if (err instanceof TrackerError && err.kind === 'not_found') return null;
        throw err;
      }
      return { ...(await toTask(item)), blockedBy: await blockersOf(item.id, new Map()) };
    },

    async update(id: string, update: StatusUpdate) {
      const path = `${proj}/work-items/${encodeURIComponent(id)}/`;
      // One read of the item decides what is left to send.
      const { body: item } = await http.get(`${path}?${EXPAND}`, PlaneItem);
      const patch: { state?: string; labels?: string[] } = {};
      if (update.state) {
        const stateId = await stateIdOf(update.state);
        if (stateId !== (item.state === null ? null : idOf(item.state))) patch.state = stateId;
      }
      const names = item.labels.filter((l) => typeof l !== 'string').map((l) => l.name);
      const { add, remove } = labelChanges(names, update);
      if (add.length || remove.length) {
        patch.labels = await newLabelIds(item.labels.map(idOf), add, remove);
      }
      if (Object.keys(patch).length === 0) return;
      await http.request('PATCH', path, Ignored, patch);
    },

    async comment(id: string, body: string) {
      const { body: created } = await http.request(
        'POST',
        `${proj}/work-items/${encodeURIComponent(id)}/comments/`,
        z.object({ id: z.string().min(1) }),
        { comment_html: markdownToHtml(body) },
      );
      return { id: created.id };
    },
  };
}

function matchesQuery(task: ExternalTask, query: TaskQuery, item: PlaneItem): boolean {
  const lower = (s: string) => s.toLowerCase();
  if (query.states?.length && !query.states.some((s) => lower(s) === lower(task.state))) return false;
  if (query.labels?.length && !query.labels.every((l) => task.labels.some((x) => lower(x) === lower(l))))
    return false;
  if (query.assignee) {
    const a = lower(query.assignee);
    const hit = item.assignees.some((u) =>
      typeof u === 'string'
        ? lower(u) === a
        : [u.id, u.display_name, u.email].some((v) => v !== undefined && lower(v) === a),
    );
    if (!hit) return false;
  }
  return true;
}

function userName(u: PlaneUser): string {
  return u.display_name || u.email || [u.first_name, u.last_name].filter(Boolean).join(' ') || u.id;
}

function defaultWebUrl(root: string): string {
  return /^https:\/\/api\.plane\.so$/i.test(root) ? 'https://app.plane.so' : root;
}

const ENTITIES: Record<string, string> = {
  '&amp;': '&',
  '&lt;': '<',
  '&gt;': '>',
  '&quot;': '"',
  '&#39;': "'",
  '&nbsp;': ' ',
};

/** Plane's HTML description as plain text: block ends become line breaks, tags go, entities are decoded. */
export function htmlToText(html: string): string {
  return html
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(p|div|h[1-6]|li|pre|blockquote)>/gi, '\n')
    .replace(/<li[^>]*>/gi, '- ')
    .replace(/<[^>]*>/g, '')
    .replace(/&(amp|lt|gt|quot|#39|nbsp);/g, (e) => ENTITIES[e] ?? e)
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

const escapeHtml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Markdown as the HTML Plane stores comments in, simply: fenced code blocks
 * become `<pre><code>`, other blank-line separated blocks paragraphs with
 * their line breaks kept. Everything is escaped, so no markup gets through.
 */
export function markdownToHtml(markdown: string): string {
  const out: string[] = [];
  const parts = markdown.replace(/\r\n/g, '\n').split(/^```[^\n]*\n?/m);
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      out.push(`<pre><code>${escapeHtml(part.replace(/\n$/, ''))}</code></pre>`);
      return;
    }
    for (const block of part.split(/\n\s*\n/)) {
      const text = block.trim();
      if (text) out.push(`<p>${text.split('\n').map(escapeHtml).join('<br />')}</p>`);
    }
  });
  return out.join('') || '<p></p>';
}
