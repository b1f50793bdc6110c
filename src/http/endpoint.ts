/**
 * An API endpoint declared once: method, path, schemas and handler. The app
 * registers it and the OpenAPI document is built from the same declaration,
 * so the two cannot drift apart.
 */
import type { Context } from 'hono';
import type { z } from 'zod';
import { ApiError } from './errors.ts';
import { issueDetails } from './schemas.ts';

export type Method = 'get' | 'post';

export interface Endpoint {
  method: Method;
  /** OpenAPI path, e.g. `/api/tasks/{key}`. */
  path: string;
  summary: string;
  tag: string;
  query?: z.ZodType;
  body?: z.ZodType;
  /** Path parameters and what they are. */
  params?: Record<string, string>;
  /** Status → description; the success status first. */
  responses: Record<number, string>;
  /** Content type of the success response. */
  produces: string;
  run(c: Context): Promise<Response>;
}

interface Input<Q, B> {
  params: Record<string, string>;
  query: Q;
  body: B;
}

/** Declares an endpoint; its query and body are validated before `handle` runs. */
export function endpoint<
  Q extends z.ZodType | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
>(def: {
  method: Method;
  path: string;
  summary: string;
  tag: string;
  query?: Q;
  body?: B;
  params?: Record<string, string>;
  responses?: Record<number, string>;
  produces?: string;
  handle(
    c: Context,
    input: Input<
      Q extends z.ZodType ? z.output<Q> : undefined,
      B extends z.ZodType ? z.output<B> : undefined
    >,
  ): Response | Promise<Response>;
}): Endpoint {
  return {
    method: def.method,
    path: def.path,
    summary: def.summary,
    tag: def.tag,
    ...(def.query ? { query: def.query } : {}),
    ...(def.body ? { body: def.body } : {}),
    ...(def.params ? { params: def.params } : {}),
    responses: def.responses ?? { 200: 'OK' },
    produces: def.produces ?? 'application/json',
    async run(c) {
      const query = def.query ? parse(def.query, 'query', c.req.query()) : undefined;
      const body = def.body ? parse(def.body, 'body', await jsonBody(c)) : undefined;
      // The generic input types are checked at the declaration; here they are the parsed values.
      return def.handle(c, { params: c.req.param() as Record<string, string>, query, body } as never);
    },
  };
}

function parse(schema: z.ZodType, where: 'body' | 'query', value: unknown): unknown {
  const r = schema.safeParse(value);
  if (!r.success) throw new ApiError('bad_request', `invalid ${where}`, issueDetails(where, r.error));
  return r.data;
}

/** The request's JSON body; an empty body is `{}`. Anything but JSON is refused. */
async function jsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (!text.trim()) return {};
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(type))
    throw new ApiError(
      'unsupported_media_type',
      `send the body as application/json (got ${type || 'no content type'})`,
    );
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ApiError('bad_request', 'invalid body: not JSON', [
      { path: 'body', message: (error as Error).message },
    ]);
  }
}

/** `/api/tasks/{key}` → `/api/tasks/:key` (Hono's syntax). */
export const honoPath = (openApiPath: string): string => openApiPath.replace(/\{(\w+)\}/g, ':$1');
