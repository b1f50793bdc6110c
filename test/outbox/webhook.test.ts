/**
 * The outbox end to end through the real CLI, with the webhook channel and a
 * receiver on loopback: every routed event of every task arrives signed, in
 * order per task, and a receiver that fails for a while delays deliveries
 * without losing one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { makeProject, type TempProject } from '../helpers/kit.ts';
import { NOTIFY_EVENTS } from '../../src/trackers/config.ts';

const SECRET = 'whsec-test-0123456789';

interface Received {
  signatureOk: boolean;
  delivery: string;
  body: {
    event: string;
    event_id: number;
    task: { key: string; stage: string };
    data: Record<string, unknown>;
  };
  answered: number;
}

async function receiver(failFirst: number) {
  const received: Received[] = [];
  let failures = failFirst;
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const expected = `sha256=${createHmac('sha256', SECRET).update(raw).digest('hex')}`;
      const got = String(req.headers['x-orch-signature'] ?? '');
      const signatureOk =
        got.length === expected.length && timingSafeEqual(Buffer.from(got), Buffer.from(expected));
      const answered = failures-- > 0 ? 503 : 204;
      received.push({
        signatureOk,
        delivery: String(req.headers['x-orch-delivery']),
        body: JSON.parse(raw) as Received['body'],
        answered,
      });
      res.writeHead(answered, answered === 503 ? { 'retry-after': '1' } : {}).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { url, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

let project: TempProject | undefined;
let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  project?.cleanup();
  project = undefined;
});

describe('outbox: webhook channel', () => {
  it('delivers every routed event, signed and in order, through a receiver outage', async () => {
    const hook = await receiver(4);
    close = hook.close;
    project = makeProject({
      config: {
        notify: { channels: { hook: { kind: 'webhook', url: hook.url, secret_env: 'ORCH_WEBHOOK_SECRET' } } },
      },
    });
    for (const title of ['First', 'Second']) expect(project.orch(['task', 'add', title]).code).toBe(0);
    const run = await project.orchAsync(['run', '--until-idle'], { env: { ORCH_WEBHOOK_SECRET: SECRET } });
    expect(run.code, run.stderr).toBe(0);

    expect(hook.received.filter((r) => r.answered === 503)).toHaveLength(4);
    expect(hook.received.every((r) => r.signatureOk)).toBe(true);
    const accepted = hook.received.filter((r) => r.answered === 204);

    const ctx = await project.context();
    try {
      const events = await ctx.store.db.selectFrom('events').selectAll().orderBy('id').execute();
      // Every event of a kind a channel routes by default (no gate fails here).
      const routed = events.filter((e) => (NOTIFY_EVENTS as readonly string[]).includes(e.kind));
      // Nothing lost, nothing sent twice once accepted.
      expect(accepted.map((r) => r.body.event_id).sort((a, b) => a - b)).toEqual(routed.map((e) => e.id));
      // In event order per task.
      for (const key of ['T-1', 'T-2']) {
        const ids = accepted.filter((r) => r.body.task.key === key).map((r) => r.body.event_id);
        expect(ids).toEqual([...ids].sort((a, b) => a - b));
        const kinds = accepted.filter((r) => r.body.task.key === key).map((r) => r.body.event);
        expect(kinds[0]).toBe('task_created');
        expect(kinds.at(-1)).toBe('done');
        expect(kinds).toContain('run_started');
        expect(kinds).toContain('run_finished');
      }
      const finished = accepted.find((r) => r.body.event === 'run_finished')!;
      // Agent finished, with its usage.
      expect(finished.body.data).toMatchObject({
        outcome: 'ok',
        model: expect.any(String),
        input_tokens: expect.any(Number),
        output_tokens: expect.any(Number),
        duration_ms: expect.any(Number),
      });
      const rows = await ctx.store.outbox.items();
      expect(rows.every((r) => r.status === 'sent')).toBe(true);
      const status = JSON.parse(project.orch(['status', '--json']).stdout) as { outbox: unknown[] };
      expect(status.outbox).toEqual([{ channel: 'sample/hook', sent: rows.length, pending: 0, dead: 0 }]);
      expect(rows.filter((r) => r.attempts > 0).length).toBeGreaterThan(0);
    } finally {
      await ctx.close();
    }
  }, 120_000);

  it('routes only the configured event kinds, and a missing secret variable holds deliveries without losing them', async () => {
    const hook = await receiver(0);
    close = hook.close;
    project = makeProject({
      config: {
        notify: {
          channels: {
            hook: {
              kind: 'webhook',
              url: hook.url,
              secret_env: 'ORCH_WEBHOOK_SECRET',
              events: ['done', 'escalated'],
            },
          },
        },
      },
    });
    expect(project.orch(['task', 'add', 'Only']).code).toBe(0);
    // First run without the secret: the channel cannot be built, the delivery waits.
    const first = await project.orchAsync(['run', '--until-idle']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('ORCH_WEBHOOK_SECRET is not set');
    expect(hook.received).toHaveLength(0);
    const ctx = await project.context();
    try {
      const pending = await ctx.store.outbox.items({ status: 'pending' });
      expect(pending.map((p) => p.kind)).toEqual(['done']);
      // Due now, as if its wait had passed.
      await ctx.store.db
        .updateTable('outbox')
        .set({ next_attempt_at: new Date(0).toISOString() })
        .execute();
    } finally {
      await ctx.close();
    }
    const second = await project.orchAsync(['run', '--until-idle'], { env: { ORCH_WEBHOOK_SECRET: SECRET } });
    expect(second.code, second.stderr).toBe(0);
    expect(hook.received.map((r) => [r.body.event, r.body.task.key, r.signatureOk])).toEqual([
      ['done', 'T-1', true],
    ]);
  });
});
