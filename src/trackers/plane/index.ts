export { plane } from './descriptor.ts';
export { createPlaneTracker, htmlToText, markdownToHtml, type PlaneTrackerOptions } from './tracker.ts';
export { createPlaneWebhooks } from './webhooks.ts';
