/**
 * The default pipeline: stages, the transitions between them and the role
 * that works each stage. Pure data and functions; no I/O.
 */

/** The stages a pipeline works; `created`, `done` and `cancelled` are implicit. */
export const WORK_STAGES = [
  'analysis',
  'architecture',
  'development',
  'review',
  'testing',
  'deploy-staging',
  'deploy',
] as const;
export type WorkStage = (typeof WORK_STAGES)[number];

/** Every stage of the default pipeline, in order (the seed pins this exact set). */
export const STAGES = ['created', ...WORK_STAGES, 'done', 'cancelled'] as const;
export type Stage = (typeof STAGES)[number];

export const ROLES = ['analyst', 'architect', 'developer', 'reviewer', 'tester', 'deployer'] as const;
export type Role = (typeof ROLES)[number];

/** Task status is separate from its stage: where it is vs. what is happening to it. */
export const TASK_STATUSES = [
  'queued',
  'running',
  'waiting',
  'blocked',
  'escalated',
  'done',
  'cancelled',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Stages a task may move to from each stage. Review and testing can send work back to development. */
export const STAGE_TRANSITIONS: Readonly<Record<Stage, readonly Stage[]>> = {
  created: ['analysis', 'cancelled'],
  analysis: ['architecture', 'cancelled'],
  architecture: ['development', 'cancelled'],
  development: ['review', 'cancelled'],
  review: ['testing', 'development', 'cancelled'],
  testing: ['deploy-staging', 'development', 'cancelled'],
  'deploy-staging': ['deploy', 'development', 'cancelled'],
  deploy: ['done', 'cancelled'],
  done: [],
  cancelled: [],
};

/** The role that works each agent stage of the default pipeline. */
export const STAGE_ROLE: Readonly<Partial<Record<Stage, Role>>> = {
  analysis: 'analyst',
  architecture: 'architect',
  development: 'developer',
  review: 'reviewer',
  testing: 'tester',
  'deploy-staging': 'deployer',
  deploy: 'deployer',
};

export const isRole = (value: unknown): value is Role =>
  typeof value === 'string' && (ROLES as readonly string[]).includes(value);

/** Milliseconds between two ISO timestamps, or null while either is missing (a run in flight). */
export const elapsedMs = (r: { started_at: string | null; finished_at: string | null }): number | null =>
  r.started_at && r.finished_at ? Date.parse(r.finished_at) - Date.parse(r.started_at) : null;
