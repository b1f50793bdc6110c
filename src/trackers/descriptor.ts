/**
 * One shape per service: each tracker folder exports a descriptor saying
 * which `kind`s it serves, where its token is, the branch of the `tracker:`
 * (and `forge:`) sections it reads, and how to build its adapters. A
 * descriptor imports nothing but zod: the adapters (Octokit, the Linear SDK,
 * gitbeaker…) are loaded by `create*` on first use, so a project without a
 * tracker never pays for them.
 */
import type { z } from 'zod';
import type { Forge, Tracker, TrackerKind, WebhookReceiver } from './types.ts';

export interface ServiceDescriptor<
  TS extends z.ZodObject = z.ZodObject,
  FS extends z.ZodObject = z.ZodObject,
> {
  /** The `kind`s this folder serves (Gitea and Forgejo share one). */
  readonly kinds: readonly TrackerKind[];
  /** The environment variable holding the token when the section names none. */
  readonly tokenEnv: string;
  /**
   * Its issues are only open or closed (GitHub, Gitea, GitLab): only open ones
   * are imported unless told, and stages map to `orch:<stage>` labels unless
   * the project maps them.
   */
  readonly openClosed: boolean;
  /** The `tracker:` section of these kinds: one branch of the discriminated union. */
  readonly trackerSchema: TS;
  /** The `forge:` section, for services that are forges too. */
  readonly forgeSchema?: FS;
  createTracker(cfg: z.output<TS>, token: string): Promise<Tracker>;
  createForge?(cfg: z.output<FS>, token: string): Promise<Forge>;
  /** The receiver of the service's webhooks, signed with `secret`. */
  createWebhooks(kind: TrackerKind, secret: string): Promise<WebhookReceiver>;
}
