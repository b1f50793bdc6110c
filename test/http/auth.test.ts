/**
 * Auth: with a token every API and metrics request needs `Authorization:
 * Bearer`, a missing or wrong one is a 401 in JSON; no secret is ever in a
 * response; a non-loopback bind without a token is refused at start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiFixture, fakeRun, type ApiFixture } from './http-kit.ts';
import { startServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { openContext } from '../../src/runtime/context.ts';

const TOKEN = 'test-token-0123456789abcdef';
const SECRET = 'sk-live-very-secret-value-42';
const web = mkdtempSync(join(tmpdir(), 'orch-web-'));
writeFileSync(join(web, 'index.html'), '<!doctype html><title>orch</title>');

let f: ApiFixture;
beforeAll(async () => {
  f = await apiFixture({
    app: { token: TOKEN, webDir: web },
    env: { ORCH_API_TOKEN: TOKEN, PAYMENTS_API_KEY: SECRET },
  });
});
afterAll(async () => {
  await f.close();
  rmSync(web, { recursive: true, force: true });
});

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

describe('a server with a token', () => {
  it.each([
    ['no header', {}],
    ['a wrong token', bearer('test-token-0123456789abcdeX')],
    ['a prefix of the token', bearer(TOKEN.slice(0, -1))],
    ['another scheme', { Authorization: `Basic ${TOKEN}` }],
    ['an empty bearer', { Authorization: 'Bearer ' }],
  ])('refuses %s with a JSON 401', async (_what, headers) => {
    for (const path of ['/api/tasks', '/api/status', '/metrics', '/api/events', '/api/openapi.json']) {
      const res = await f.get(path, headers);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(await res.json()).toMatchObject({ error: { code: 'unauthorized' } });
    }
    const write = await f.post('/api/tasks', { title: 'sneaky' }, headers);
    expect(write.status).toBe(401);
    expect(await f.ctx.store.listTasks()).not.toContainEqual(expect.objectContaining({ title: 'sneaky' }));
  });

  it('serves every route to the right token, and the dashboard page without one', async () => {
    expect((await f.get('/api/tasks', bearer(TOKEN))).status).toBe(200);
    expect((await f.get('/metrics', bearer(TOKEN))).status).toBe(200);
    expect((await f.post('/api/tasks', { title: 'allowed' }, bearer(TOKEN))).status).toBe(201);
    const page = await f.get('/');
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>orch</title>');
  });

  it('answers any Host once a token guards it (it may be bound to a public address)', async () => {
    const res = await f.api.app.request('http://orch.example.com/api/tasks', { headers: bearer(TOKEN) });
    expect(res.status).toBe(200);
  });

  it('never shows a secret: not in tasks, logs, errors or the OpenAPI document', async () => {
    const created = await f.post(
      '/api/tasks',
      { title: `deploy with ${SECRET}`, description: `token ${TOKEN}` },
      bearer(TOKEN),
    );
    const task = (await created.json()) as { key: string; title: string };
    expect(task.title).toBe('deploy with [REDACTED]');
    const { runId } = await fakeRun(f, task.key, {
      lines: [`export PAYMENTS_API_KEY=${SECRET}`, `Bearer ${TOKEN}`],
    });
    const bodies = await Promise.all(
      [
        `/api/tasks/${task.key}`,
        `/api/tasks`,
        `/api/runs/${runId}/log`,
        `/api/runs/${runId}/log?format=raw`,
        `/api/tasks/${task.key}/events`,
        '/api/openapi.json',
        '/api/status',
        `/api/tasks/${SECRET}`,
      ].map(async (p) => (await f.get(p, bearer(TOKEN))).text()),
    );
    for (const body of bodies) {
      expect(body).not.toContain(SECRET);
      expect(body).not.toContain(TOKEN);
    }
    expect(bodies[2]).toContain('PAYMENTS_API_KEY=[REDACTED]');
  });
});

describe('binding', () => {
  it('refuses a non-loopback address without ORCH_API_TOKEN, naming the fix', async () => {
    const ctx = await openContext(f.project.dir, { ...f.project.env, ORCH_API_TOKEN: undefined });
    try {
      const log = createLogger({ write: () => {} });
      await expect(startServer(ctx, { host: '0.0.0.0', port: 0, log, webDir: null })).rejects.toThrow(
        /refusing to serve on 0\.0\.0\.0 without an API token: set ORCH_API_TOKEN/,
      );
      const loopback = await startServer(ctx, { host: '127.0.0.1', port: 0, log, webDir: null });
      const res = await fetch(`${loopback.url}/api/status`);
      expect(res.status).toBe(200);
      await loopback.close();
    } finally {
      await ctx.close();
    }
  });

  it('refuses a token too short to protect anything', async () => {
    const ctx = await openContext(f.project.dir, { ...f.project.env, ORCH_API_TOKEN: 'short' });
    try {
      await expect(
        startServer(ctx, { host: '0.0.0.0', port: 0, log: createLogger({ write: () => {} }), webDir: null }),
      ).rejects.toThrow(/at least 16 characters/);
    } finally {
      await ctx.close();
    }
  });

  it('serves a public address with a token, over a real socket', async () => {
    const ctx = await openContext(f.project.dir, { ...f.project.env, ORCH_API_TOKEN: TOKEN });
    const server = await startServer(ctx, {
      host: '0.0.0.0',
      port: 0,
      log: createLogger({ write: () => {} }),
      webDir: null,
    });
    try {
      const url = `http://127.0.0.1:${server.port}`;
      expect((await fetch(`${url}/api/tasks`)).status).toBe(401);
      expect((await fetch(`${url}/api/tasks`, { headers: bearer(TOKEN) })).status).toBe(200);
    } finally {
      await server.close();
      await ctx.close();
    }
  });
});
