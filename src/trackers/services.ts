/**
 * The table of services orch talks to: one descriptor per tracker folder.
 * Adding a service is adding its folder and a line here; the config sections
 * (config.ts) and the factories (index.ts) follow.
 */
import { github } from './github/descriptor.ts';
import { gitea } from './gitea/descriptor.ts';
import { gitlab } from './gitlab/descriptor.ts';
import { linear } from './linear/descriptor.ts';
import { plane } from './plane/descriptor.ts';
import { jira } from './jira/descriptor.ts';
import type { ServiceDescriptor } from './descriptor.ts';
import type { TrackerKind } from './types.ts';

/** Every service that can be a project's tracker. */
export const TRACKERS = [github, gitea, gitlab, linear, plane, jira] as const;
/** The services that are forges too (pull requests, CI, merges, reviews). */
export const FORGES = [github, gitea, gitlab] as const;

/** The descriptor serving a kind. */
export function serviceOf(kind: TrackerKind): ServiceDescriptor {
  const found = TRACKERS.find((s) => s.kinds.includes(kind));
  // The config's discriminated union admits only the kinds of this table.
  if (!found) throw new Error(`no tracker serves kind '${kind}'`);
  return found as unknown as ServiceDescriptor;
}

/** Whether the issues of `kind` are only open or closed (see `ServiceDescriptor.openClosed`). */
export const isOpenClosed = (kind: TrackerKind): boolean => serviceOf(kind).openClosed;
