export { gitea } from './descriptor.ts';
export { createGiteaTracker } from './tracker.ts';
export { createGiteaForge } from './forge.ts';
export { createGiteaWebhooks } from './webhooks.ts';
export type { GiteaOptions } from './client.ts';
