export { linear } from './descriptor.ts';
export { createLinearTracker, type LinearTrackerOptions } from './tracker.ts';
export { createLinearWebhooks } from './webhooks.ts';
export { linearError, rateLimitWaitMs } from './errors.ts';
