/**
 * The dependency store, run against SQLite and PostgreSQL (a fresh database
 * for this file on the local server), in the style of the store contract:
 * edges added by people and imported from trackers, edges to tasks not
 * imported yet resolved when they arrive, and the reads the pipeline and
 * `task show` make.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import type { Dialect } from '../../src/store/migrations.ts';
import type { Task } from '../../src/store/schema.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.ts';

interface Backend {
  dialect: Dialect;
  setup(): Promise<void>;
  /** A store on a new, empty database. */
  fresh(): Promise<Store>;
  teardown(): Promise<void>;
}

function sqlite(): Backend {
  let dir = '';
  let n = 0;
  return {
    dialect: 'sqlite',
    setup: async () => {
      dir = mkdtempSync(join(tmpdir(), 'orch-deps-'));
    },
    fresh: async () => {
      const { db, dialect } = await openDatabase(join(dir, `deps-${++n}.db`));
      return new Store(db, dialect);
    },
    teardown: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

function postgres(): Backend {
  const databases: TestDatabase[] = [];
  return {
    dialect: 'postgres',
    setup: async () => {},
    fresh: async () => {
      const database = await createTestDatabase('orch_deps');
      databases.push(database);
      const { db, dialect } = await openDatabase(database.url, { poolMax: 4 });
      return new Store(db, dialect);
    },
    teardown: async () => {
      await Promise.all(databases.splice(0).map((d) => d.drop()));
    },
  };
}

describe.each([sqlite(), postgres()])('dependency store on $dialect', (backend) => {
  let store: Store;
  let projectId: number;
  const task = (title: string, external?: { id: string }): Promise<Task> =>
    store.createTask({
      projectId,
      title,
      ...(external
        ? {
            external: {
              source: 'github',
              id: external.id,
              key: `acme/app#${external.id}`,
              url: `https://github.com/acme/app/issues/${external.id}`,
              updatedAt: '2025-01-01T00:00:00Z',
            },
          }
        : {}),
    });
  const keys = (linked: { key: string }[]) => linked.map((l) => l.key);

  beforeAll(() => backend.setup());
  afterAll(() => backend.teardown());
  beforeEach(async () => {
    await store?.close();
    store = await backend.fresh();
    projectId = (
      await store.upsertProject({ name: 'app', rootPath: '/r', baseBranch: 'main', keyPrefix: 'T' })
    ).id;
  });
  afterAll(() => store?.close());

  it('adds edges once, and reads what a task waits for and what waits for it', async () => {
    const [a, b, c] = [await task('a'), await task('b'), await task('c')];
    const d = store.dependencies;
    await store.tx((tx) => d.add(tx, projectId, [{ taskId: a.id, blockerTaskId: b.id }]));
    await store.tx((tx) =>
      d.add(tx, projectId, [
        { taskId: a.id, blockerTaskId: c.id },
        { taskId: a.id, blockerTaskId: b.id },
      ]),
    );
    expect(await d.dependsOn(a.id)).toEqual([
      { key: b.key, title: 'b', stage: 'created', status: 'queued', terminal_reason: null, origin: 'orch' },
      { key: c.key, title: 'c', stage: 'created', status: 'queued', terminal_reason: null, origin: 'orch' },
    ]);
    expect(keys(await d.blocks(b.id))).toEqual([a.key]);
    expect((await d.blocks(b.id))[0]!.task_id).toBe(a.id);
    expect(await d.blocks(a.id)).toEqual([]);
    expect(await store.dependencies.edgesOfProject(store.db, projectId)).toEqual([
      [a.key, b.key],
      [a.key, c.key],
    ]);
  });

  it('unfinished blockers leave out the done ones and keep those not imported yet', async () => {
    const [a, b, c] = [
      await task('a', { id: '1' }),
      await task('b', { id: '2' }),
      await task('c', { id: '3' }),
    ];
    await store.tx((tx) =>
      store.dependencies.replaceImported(tx, a, [
        { blockerTaskId: b.id, source: 'github', externalId: '2', externalKey: 'acme/app#2' },
        { blockerTaskId: c.id, source: 'github', externalId: '3', externalKey: 'acme/app#3' },
        { blockerTaskId: null, source: 'github', externalId: '9', externalKey: 'acme/app#9' },
      ]),
    );
    await store.tx(async (tx) => {
      await store.advanceStage(tx, c, 'done', { status: 'done' });
    });
    expect(await store.dependencies.unfinishedBlockers(a.id)).toEqual([
      {
        key: b.key,
        title: 'b',
        stage: 'created',
        status: 'queued',
        terminal_reason: null,
        origin: 'tracker',
      },
      { key: 'acme/app#9', title: null, stage: null, status: null, terminal_reason: null, origin: 'tracker' },
    ]);
  });

  it('an import replaces the imported edges and keeps the ones people made', async () => {
    const [a, b, c] = [await task('a', { id: '1' }), await task('b', { id: '2' }), await task('c')];
    const d = store.dependencies;
    await store.tx((tx) => d.add(tx, projectId, [{ taskId: a.id, blockerTaskId: c.id }]));
    await store.tx((tx) =>
      d.replaceImported(tx, a, [
        { blockerTaskId: b.id, source: 'github', externalId: '2', externalKey: 'acme/app#2' },
      ]),
    );
    expect(keys(await d.dependsOn(a.id))).toEqual([c.key, b.key]);
    // The tracker no longer names b: its edge goes, c's stays.
    await store.tx((tx) => d.replaceImported(tx, a, []));
    expect(keys(await d.dependsOn(a.id))).toEqual([c.key]);
    // A person's edge the tracker also names stays one edge, and stays theirs.
    await store.tx((tx) => d.add(tx, projectId, [{ taskId: a.id, blockerTaskId: b.id }]));
    await store.tx((tx) =>
      d.replaceImported(tx, a, [
        { blockerTaskId: b.id, source: 'github', externalId: '2', externalKey: 'acme/app#2' },
      ]),
    );
    await store.tx((tx) => d.replaceImported(tx, a, []));
    expect((await d.dependsOn(a.id)).map((l) => [l.key, l.origin])).toEqual([
      [c.key, 'orch'],
      [b.key, 'orch'],
    ]);
  });

  it('an edge to a task not imported yet is resolved when it arrives, in its project only', async () => {
    const a = await task('a', { id: '1' });
    const d = store.dependencies;
    await store.tx((tx) =>
      d.replaceImported(tx, a, [
        { blockerTaskId: null, source: 'github', externalId: '7', externalKey: 'acme/app#7' },
      ]),
    );
    const other = await store.upsertProject({
      name: 'other',
      rootPath: '/o',
      baseBranch: 'main',
      keyPrefix: 'O',
    });
    const elsewhere = await store.createTask({
      projectId: other.id,
      title: 'same number elsewhere',
      external: { source: 'github', id: '7', key: 'x/y#7', url: 'u', updatedAt: 'z' },
    });
    expect(await store.tx((tx) => d.resolvePending(tx, other.id, 'github', '7', elsewhere.id))).toEqual([]);

    const b = await task('b', { id: '7' });
    const resolved = await store.tx((tx) => d.resolvePending(tx, projectId, 'github', '7', b.id));
    expect(resolved).toEqual([{ id: expect.any(Number), task_id: a.id }]);
    expect(keys(await d.dependsOn(a.id))).toEqual([b.key]);
    expect(keys(await d.blocks(b.id))).toEqual([a.key]);
    await store.tx((tx) =>
      d.remove(
        tx,
        resolved.map((r) => r.id),
      ),
    );
    expect(await d.dependsOn(a.id)).toEqual([]);
  });

  it('removes a person-made edge, and says when there was none', async () => {
    const [a, b] = [await task('a'), await task('b')];
    await store.tx((tx) => store.dependencies.add(tx, projectId, [{ taskId: a.id, blockerTaskId: b.id }]));
    expect(await store.tx((tx) => store.dependencies.removeEdge(tx, a.id, b.id))).toBe(true);
    expect(await store.tx((tx) => store.dependencies.removeEdge(tx, a.id, b.id))).toBe(false);
  });
});
