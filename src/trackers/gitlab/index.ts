export { gitlab } from './descriptor.ts';
export { createGitLabTracker } from './tracker.ts';
export { createGitLabForge } from './forge.ts';
export { createGitLabWebhooks } from './webhooks.ts';
export type { GitLabOptions } from './client.ts';
