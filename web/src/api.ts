/**
 * The dashboard's client of orch's API: JSON requests with the bearer token
 * (kept in localStorage when the server asks for one), and the event stream
 * read with fetch, so it carries the token and resumes with `Last-Event-ID`.
 */
import type { ErrorBody } from '../../src/http/types.ts';

const TOKEN_KEY = 'orch.token';

export const getToken = (): string | null => localStorage.getItem(TOKEN_KEY);
export const setToken = (token: string | null): void =>
  token ? localStorage.setItem(TOKEN_KEY, token) : localStorage.removeItem(TOKEN_KEY);

/** An error the API returned: its code and message, and per-field details for bad input. */
export class ApiFailure extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: { path: string; message: string }[];
  constructor(status: number, body: ErrorBody | null) {
    super(body?.error.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error.code ?? 'http_error';
    this.details = Array.isArray(body?.error.details) ? body.error.details : [];
  }
}

/** What to tell a person about a failed request: each invalid field, or the message. */
export function failureText(error: unknown): string {
  if (error instanceof ApiFailure && error.details.length)
    return error.details.map((d) => `${d.path}: ${d.message}`).join('; ');
  return error instanceof Error ? error.message : String(error);
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();
/** Called when a request is refused for want of a token. */
export const onUnauthorized = (fn: Listener): (() => void) => {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
};

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = getToken();
  return { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra };
}

async function request(method: string, path: string, body?: unknown): Promise<Response> {
  const res = await fetch(path, {
    method,
    headers: headers(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (res.status === 401) unauthorizedListeners.forEach((fn) => fn());
  if (!res.ok) {
    let parsed: ErrorBody | null = null;
    try {
      parsed = (await res.json()) as ErrorBody;
    } catch {
      /* not JSON */
    }
    throw new ApiFailure(res.status, parsed);
  }
  return res;
}

export const getJson = async <T>(path: string): Promise<T> =>
  (await (await request('GET', path)).json()) as T;
export const getText = async (path: string): Promise<string> => (await request('GET', path)).text();

/**
 * Every item of a paged list (`/api/tasks`): pages of 500, each after the
 * cursor the previous one gave in `X-Next-After`, until there is none.
 */
export async function getAllPages<T>(path: string): Promise<T[]> {
  const items: T[] = [];
  const sep = path.includes('?') ? '&' : '?';
  let after: string | null = null;
  do {
    const res = await request('GET', `${path}${sep}limit=500${after ? `&after=${after}` : ''}`);
    items.push(...((await res.json()) as T[]));
    after = res.headers.get('X-Next-After');
  } while (after);
  return items;
}
/** One page of a paged list; `more` when another page follows. */
export async function getPage<T>(path: string): Promise<{ items: T[]; more: boolean }> {
  const res = await request('GET', path);
  return { items: (await res.json()) as T[], more: res.headers.get('X-Next-After') !== null };
}
export const postJson = async <T>(path: string, body: unknown = {}): Promise<T> =>
  (await (await request('POST', path, body)).json()) as T;

/** One server-sent event, its data parsed. */
export interface StreamEvent {
  event: string;
  id: string | null;
  data: Record<string, unknown>;
}

export interface Subscription {
  close(): void;
}

/**
 * Follows `/api/events` (with `query`), reconnecting after a drop and resuming
 * after the last event id seen. `onState` reports whether the stream is live.
 */
export function subscribe(
  query: Record<string, string>,
  onEvent: (e: StreamEvent) => void,
  onState: (live: boolean) => void = () => {},
): Subscription {
  const abort = new AbortController();
  let lastId: string | null = null;
  let retryMs = 2000;

  const dispatch = (frame: string) => {
    let event = 'message';
    let id: string | null = null;
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
      else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (id !== null) lastId = id;
    if (!data.length) return;
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(data.join('\n')) as Record<string, unknown>;
    } catch {
      return;
    }
    if (event === 'ready') onState(true);
    onEvent({ event, id, data: parsed });
  };

  const run = async () => {
    while (!abort.signal.aborted) {
      try {
        const params = new URLSearchParams(query).toString();
        const res = await fetch(`/api/events${params ? `?${params}` : ''}`, {
          headers: headers(lastId ? { 'Last-Event-ID': lastId } : {}),
          signal: abort.signal,
        });
        if (res.status === 401) unauthorizedListeners.forEach((fn) => fn());
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, '\n');
          let end: number;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch {
        /* dropped or refused: retry below */
      }
      if (abort.signal.aborted) break;
      onState(false);
      await new Promise((r) => setTimeout(r, retryMs));
    }
  };
  void run();
  return {
    close: () => {
      abort.abort();
      onState(false);
    },
  };
}
