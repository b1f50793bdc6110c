/** The OpenAPI 3.1 document, built from the endpoint declarations (request schemas from zod). */
import { z } from 'zod';
import type { Endpoint } from './endpoint.ts';
import { ORCH_VERSION } from '../version.ts';

const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: {
          type: 'string',
          description: 'machine-readable, e.g. unknown_task, invalid_state, bad_request',
        },
        message: { type: 'string' },
        details: {
          description: 'for bad input: one entry per problem',
          oneOf: [
            {
              type: 'array',
              items: {
                type: 'object',
                properties: { path: { type: 'string' }, message: { type: 'string' } },
                required: ['path', 'message'],
              },
            },
            { type: 'object' },
          ],
        },
      },
    },
  },
};

/** Response headers of the paged lists: where the next page starts, absent on the last page. */
const PAGE_HEADERS: Record<string, Record<string, unknown>> = {
  'get /api/tasks': {
    'X-Next-After': {
      description: 'the cursor of the next page: pass it as `after`',
      schema: { type: 'string' },
    },
    Link: { description: 'the next page, as `<url>; rel="next"`', schema: { type: 'string' } },
  },
};

const jsonSchema = (schema: z.ZodType): Record<string, unknown> => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  return rest;
};

function queryParameters(schema: z.ZodType): Record<string, unknown>[] {
  const js = jsonSchema(schema) as {
    properties?: Record<string, Record<string, unknown>>;
    required?: string[];
  };
  // A field's description (zod's `.describe`) is the parameter's, where OpenAPI tools show it.
  return Object.entries(js.properties ?? {}).map(([name, { description, ...s }]) => ({
    name,
    in: 'query',
    required: js.required?.includes(name) ?? false,
    ...(typeof description === 'string' ? { description } : {}),
    schema: s,
  }));
}

/** `get /api/tasks/{key}/runs` → `get_tasks_by_key_runs`. */
const operationId = (e: Endpoint): string =>
  `${e.method}_${e.path
    .replace(/^\/api\//, '')
    .replace(/\{(\w+)\}/g, 'by_$1')
    .replace(/[^A-Za-z0-9]+/g, '_')}`;

export function openApiDocument(
  endpoints: readonly Endpoint[],
  opts: { auth: boolean },
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const e of endpoints) {
    const parameters = [
      ...Object.entries(e.params ?? {}).map(([name, description]) => ({
        name,
        in: 'path',
        required: true,
        description,
        schema: { type: 'string' },
      })),
      ...(e.query ? queryParameters(e.query) : []),
      ...(e.path === '/api/events'
        ? [{ name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } }]
        : []),
    ];
    const responses: Record<string, unknown> = {};
    for (const [status, description] of Object.entries(e.responses)) {
      const ok = Number(status) < 400;
      responses[status] = {
        description,
        ...(ok && PAGE_HEADERS[`${e.method} ${e.path}`]
          ? { headers: PAGE_HEADERS[`${e.method} ${e.path}`] }
          : {}),
        content: ok
          ? { [e.produces]: { schema: e.produces === 'application/json' ? {} : { type: 'string' } } }
          : { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    }
    if (opts.auth)
      responses['401'] = {
        description: 'missing or wrong bearer token',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    (paths[e.path] ??= {})[e.method] = {
      summary: e.summary,
      tags: [e.tag],
      operationId: operationId(e),
      ...(parameters.length ? { parameters } : {}),
      ...(e.body
        ? {
            requestBody: { required: false, content: { 'application/json': { schema: jsonSchema(e.body) } } },
          }
        : {}),
      responses,
    };
  }
  paths['/metrics'] = {
    get: {
      summary: 'Prometheus metrics (text exposition format)',
      tags: ['metrics'],
      operationId: 'getMetrics',
      responses: {
        200: { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } },
      },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'orch API',
      version: ORCH_VERSION,
      description:
        'Tasks, runs, logs, attempts, gates, the queue and live events of an orch home. Response shapes are those of the CLI’s --json output (docs/cli.md); see docs/api.md.',
    },
    servers: [{ url: '/' }],
    ...(opts.auth ? { security: [{ bearer: [] }] } : {}),
    components: {
      schemas: { Error: ERROR_SCHEMA },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'ORCH_API_TOKEN' } },
    },
    paths,
  };
}
