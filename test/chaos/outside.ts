/**
 * The outside world of a chaos world: what orch's outbox delivers to. A fake
 * GitHub (test/fakes/trackers) is the project's tracker: most tasks are
 * imported from its issues, and orch writes their stages, a usage comment per
 * agent run and the terminal packet back to them. A webhook receiver on
 * loopback is a second channel, routed every event. Both live in the test
 * process, so they keep answering while orchestrators are SIGKILLed, and the
 * invariants read what they got.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGitHubFake, type GitHubFake } from '../fakes/trackers/github-server.ts';
import type { OrchContext } from '../../src/runtime/context.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { createTracker } from '../../src/trackers/index.ts';
import { TrackerPoller } from '../../src/runtime/tracker-sync.ts';

/** The label that marks an issue for orch (the project imports issues carrying it). */
export const IMPORT_LABEL = 'orch';
/** The webhook channel's name in orch.yaml (its outbox rows are `<project>/hook`). */
export const HOOK_CHANNEL = 'hook';

const TOKEN = 'ghp_chaosFakeToken0123456789';

/** One request the webhook receiver got. */
export interface Receipt {
  /** `X-Orch-Delivery`: the outbox row's id. */
  delivery: string;
  eventId: number;
  event: string;
  key: string;
}

export interface Outside {
  github: GitHubFake;
  /** What the webhook receiver got, in arrival order (repeats included: delivery is at least once). */
  received: Receipt[];
  /** orch.yaml sections wiring both in: `tracker` and `notify.channels`. */
  config: Record<string, unknown>;
  /** What an orchestrator needs in its environment to reach them. */
  env: Record<string, string>;
  /**
   * Files an issue titled `title` on the fake and imports it into `ctx`'s
   * project through orch's own poll; returns the task's key.
   */
  importIssue(ctx: OrchContext, title: string): Promise<string>;
  close(): Promise<void>;
}

/** A receiver that takes every delivery (204) and records it. */
async function startReceiver(received: Receipt[]): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      try {
        const body = JSON.parse(raw) as { event: string; event_id: number; task: { key: string } };
        received.push({
          delivery: String(req.headers['x-orch-delivery'] ?? ''),
          eventId: body.event_id,
          event: body.event,
          key: body.task.key,
        });
        res.writeHead(204).end();
      } catch {
        // Not orch's body: a permanent refusal, which the invariants would see as a dead row.
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

export async function startOutside(): Promise<Outside> {
  const github = await startGitHubFake({ token: TOKEN });
  const received: Receipt[] = [];
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  try {
    receiver = await startReceiver(received);
  } catch (error) {
    await github.close();
    throw error;
  }
  const env = { ORCH_GITHUB_TOKEN: TOKEN };
  const silent = createLogger({ write: () => {} });
  return {
    github,
    received,
    env,
    config: {
      tracker: {
        kind: 'github',
        url: github.url,
        repo: github.repo,
        import: { labels: [IMPORT_LABEL] },
      },
      notify: { channels: { [HOOK_CHANNEL]: { kind: 'webhook', url: receiver.url } } },
    },
    async importIssue(ctx, title) {
      const n = github.createIssue({ title, labels: [IMPORT_LABEL] });
      Object.assign(ctx.env, env);
      const project = (await ctx.store.listProjects())[0]!;
      const rt = await ctx.projectRuntime(project.id);
      const cfg = rt.raw.tracker;
      if (!cfg) throw new Error(`project ${project.name} has no tracker in its orch.yaml`);
      // The poll orch runs on its interval, run here so the wave knows its keys before it starts.
      await new TrackerPoller({ ctx, log: silent }).poll(rt, cfg, createTracker(cfg, ctx.env));
      const task = await ctx.store.taskByExternal(ctx.store.db, project.id, 'github', String(n));
      if (!task) throw new Error(`issue #${n} (${title}) was not imported`);
      return task.key;
    },
    async close() {
      await receiver.close();
      await github.close();
    },
  };
}
