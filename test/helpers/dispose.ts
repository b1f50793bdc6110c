/**
 * What a test starts, ended after it: fake servers, temporary repositories and
 * projects, contexts, child processes. Each is registered with how it ends,
 * and after each test they are ended last first (a context before its
 * project's directory, a project before the origin it pushes to), even when
 * the test failed half way.
 */
import { afterEach } from 'vitest';

/** A resource that says how it ends: a fake server or a context (`close`), a temporary directory (`cleanup`). */
export type Endable = { close(): unknown } | { cleanup(): unknown };

/** Registers `resource`, ended after the test by `end` (by default its `close()`, else its `cleanup()`); answers it. */
export interface Own {
  <T extends Endable>(resource: T): T;
  <T>(resource: T, end: (resource: T) => unknown): T;
}

const endOf = (resource: Endable): unknown => ('close' in resource ? resource.close() : resource.cleanup());

/** Registers the `afterEach` that ends what the returned function was given; call once per file or `describe`. */
export function disposeAfterEach(): Own {
  const ends: (() => unknown)[] = [];
  afterEach(async () => {
    const failures: unknown[] = [];
    for (const end of ends.splice(0).reverse()) {
      // One that fails to end does not keep the others running.
      await Promise.resolve()
        .then(end)
        .catch((error: unknown) => failures.push(error));
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, `${failures.length} resources failed to end`);
  });
  return (<T>(resource: T, end?: (resource: T) => unknown): T => {
    ends.push(() => (end ? end(resource) : endOf(resource as Endable)));
    return resource;
  }) as Own;
}
