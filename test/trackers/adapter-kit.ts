/**
 * What the tracker adapters' tests share: the TrackerError a call fails
 * with; the faults every adapter must turn into the same TrackerError kinds
 * (a wrong credential, 429 with Retry-After, a 5xx outage, a server that is
 * gone), each queued on the adapter's fake; and for the trackers with a
 * workflow of states (Jira, Linear, Plane), the five issues their list tests
 * seed and the filters every one of them must apply to those.
 */
import { expect } from 'vitest';
import { TrackerError, type StatusUpdate, type TaskQuery, type Tracker } from '../../src/trackers/types.ts';
import type { FakeService } from '../fakes/trackers/kit.ts';

/** The TrackerError a call fails with (fails the test when it succeeds or throws something else). */
export async function failure(p: Promise<unknown>): Promise<TrackerError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TrackerError);
    return err as TrackerError;
  }
  throw new Error('expected the call to fail');
}

/**
 * A call made with a wrong credential is `auth` with status 401 (worth
 * retrying once the credential is fixed), and its message holds none of
 * `secrets` (the credential, and any encoding of it the request carried).
 * Answers the error for the vendor's own checks of the message.
 */
export async function expectAuthFailure(call: Promise<unknown>, secrets: string[]): Promise<TrackerError> {
  const err = await failure(call);
  expect(err).toMatchObject({ kind: 'auth', status: 401, retryable: true });
  for (const secret of secrets) expect(err.message).not.toContain(secret);
  return err;
}

/** A 429 with `Retry-After: <seconds>` (and the vendor's `body`) is `rate_limited` with that wait. */
export async function expectRetryAfter(
  service: FakeService,
  call: () => Promise<unknown>,
  seconds: number,
  body?: unknown,
): Promise<void> {
  service.fail({ status: 429, times: 1, headers: { 'retry-after': String(seconds) }, body });
  expect(await failure(call())).toMatchObject({
    kind: 'rate_limited',
    status: 429,
    retryAfterMs: seconds * 1000,
    retryable: true,
  });
}

/**
 * An outage of `times` answers of `status`: each of `times` calls is
 * `unavailable` with that status, and made exactly one request (the adapter
 * does not retry by itself; retrying is the outbox's job).
 */
export async function expectOutage(
  service: FakeService,
  call: () => Promise<unknown>,
  fault: { status: number; times: number; body?: unknown },
): Promise<void> {
  const before = service.requests.length;
  service.fail(fault);
  for (let i = 0; i < fault.times; i++) {
    expect(await failure(call())).toMatchObject({
      kind: 'unavailable',
      status: fault.status,
      retryable: true,
    });
  }
  expect(service.requests.length - before).toBe(fault.times);
}

/** A server that cannot be reached (closed before the call) is `unavailable` with no status. */
export async function expectUnreachable(call: Promise<unknown>): Promise<void> {
  expect(await failure(call)).toMatchObject({ kind: 'unavailable', status: null, retryable: true });
}

/** A comment on, and an `update` of, an issue the tracker does not have are both `not_found`. */
export async function expectWritesNotFound(
  tracker: Tracker,
  missing: string,
  update: StatusUpdate,
): Promise<void> {
  expect((await failure(tracker.comment(missing, 'x'))).kind).toBe('not_found');
  expect((await failure(tracker.update(missing, update))).kind).toBe('not_found');
}

/** A state of a workflow tracker's seed issue, named by each vendor its own way. */
export type SeedState = 'todo' | 'doing' | 'other';

export interface SeedIssue {
  title: string;
  state: SeedState;
  labels: string[];
  /** A user's email. */
  assignee?: string;
}

/**
 * The issues the list tests of Jira, Linear and Plane seed, in creation
 * order; the users alice@example.com and bob@example.com must exist.
 */
export const SEED_ISSUES: readonly SeedIssue[] = [
  { title: 'Add a flag', state: 'todo', labels: ['orch', 'cli'], assignee: 'alice@example.com' },
  { title: 'Fix crash', state: 'todo', labels: ['orch', 'bug'], assignee: 'bob@example.com' },
  { title: 'Docs', state: 'other', labels: ['orch'] },
  { title: 'Refactor', state: 'doing', labels: ['cli'], assignee: 'alice@example.com' },
  { title: 'Release', state: 'todo', labels: [] },
];

/** The sorted titles `tracker.list` answers for a query. */
export const titlesOf =
  (tracker: Tracker) =>
  async (q: TaskQuery): Promise<string[]> =>
    (await tracker.list(q)).map((t) => t.title).sort();

/**
 * Over the seed issues: a state filter (any of), a label filter (all of)
 * and an assignee by email; `states` are the vendor's names of the seed's.
 */
export async function expectSeedFilters(tracker: Tracker, states: Record<SeedState, string>): Promise<void> {
  const titles = titlesOf(tracker);
  expect(await titles({ states: [states.todo] })).toEqual(['Add a flag', 'Fix crash', 'Release']);
  expect(await titles({ states: [states.todo, states.doing], labels: ['cli'] })).toEqual([
    'Add a flag',
    'Refactor',
  ]);
  expect(await titles({ labels: ['orch', 'bug'] })).toEqual(['Fix crash']);
  expect(await titles({ assignee: 'alice@example.com' })).toEqual(['Add a flag', 'Refactor']);
}
