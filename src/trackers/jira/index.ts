export { jira } from './descriptor.ts';
export { createJiraTracker, type JiraTrackerOptions } from './tracker.ts';
export { createJiraWebhooks } from './webhooks.ts';
export { adfToText, textToAdf, type AdfDoc, type AdfNode } from './adf.ts';
export { buildJql, jqlString } from './jql.ts';
