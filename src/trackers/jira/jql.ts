/**
 * JQL for a `TaskQuery`. Every value is a quoted JQL string, so a status
 * name with spaces, a label with a quote or a crafted assignee can only ever
 * be a value, never more query.
 */
import type { TaskQuery } from '../types.ts';

/** A JQL string literal: double quotes, with `\` and `"` escaped and line breaks flattened. */
export function jqlString(value: string): string {
  const clean = value.replace(/[\r\n\t]+/g, ' ');
  return `"${clean.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The project's issues matching the query; `me` is the token's user. Oldest first, so imports keep their order. */
export function buildJql(project: string, query: TaskQuery): string {
  const clauses = [`project = ${jqlString(project)}`];
  if (query.states?.length) clauses.push(`status in (${query.states.map(jqlString).join(', ')})`);
  for (const label of query.labels ?? []) clauses.push(`labels = ${jqlString(label)}`);
  if (query.assignee) {
    clauses.push(`assignee = ${query.assignee === 'me' ? 'currentUser()' : jqlString(query.assignee)}`);
  }
  return `${clauses.join(' AND ')} ORDER BY created ASC`;
}
