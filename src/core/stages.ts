/**
 * The default pipeline: stages, the transitions between them and the role
 * that works each stage. Pure data and functions; no I/O.
 */

/** Every stage of the default pipeline, in order (the seed pins this exact set). */
export const STAGES = [
  'created',
  'analysis',
  'architecture',
  'development',
  'review',
  'testing',
  'deploy-staging',
  'deploy',
  'done',
  'cancelled',
] as const;
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
