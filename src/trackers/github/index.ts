export { github } from './descriptor.ts';
export { createGitHubTracker } from './tracker.ts';
export { createGitHubForge } from './forge.ts';
export { createGitHubWebhooks } from './webhooks.ts';
export type { GitHubOptions } from './client.ts';
