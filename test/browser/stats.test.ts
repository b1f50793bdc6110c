/**
 * The dashboard's stats page in a real browser (Debian's Chromium through
 * playwright-core) against a real `orch serve` whose scripted agent works
 * with two developer variants: the figures shown are those counted by hand
 * from the runs table, regrouping by variant shows both variants and their
 * comparison, a task finished while the page is open shows up without a
 * reload, and the page fits a phone. Screenshots go to test-results/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Browser, Page } from 'playwright-core';
import { makeProject, waitFor, type TempProject } from '../helpers/kit.ts';
import {
  chromiumMissing,
  launchChromium,
  openPage,
  screenshots,
  serve,
  type Served,
} from '../helpers/browser.ts';
import type { OrchContext } from '../../src/runtime/context.ts';

const developer = (cost: number) => ({
  defaults: {
    developer: [
      { append: { path: 'changes/{{key}}.md', content: '- attempt {{attempt}}\n' } },
      { usage: { cost_usd: cost } },
    ],
  },
});
const VARIANTS = [
  { name: 'careful', model: 'model-careful', effort: 'max', script: 'scripts/careful.yaml' },
  { name: 'quick', model: 'model-quick', effort: 'xhigh', script: 'scripts/quick.yaml' },
];

describe.skipIf(chromiumMissing())('the stats page in Chromium, against orch serve', () => {
  let project: TempProject;
  let ctx: OrchContext;
  let server: Served;
  let url = '';
  let browser: Browser;
  const shot = screenshots('stats');
  const newPage = (width?: number, height?: number): Promise<Page> => openPage(browser, width, height);

  const addTask = async (title: string): Promise<string> => {
    const res = await fetch(`${url}/api/tasks`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ title }),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { key: string }).key;
  };
  const allDone = async (n: number) =>
    waitFor(
      async () => {
        const tasks = await ctx.store.listTasks();
        return tasks.length === n && tasks.every((t) => t.status === 'done');
      },
      90_000,
      `${n} tasks done:\n${server.output()}`,
    );

  /** Tasks done per developer variant, counted from the runs and tasks tables. */
  const doneByVariant = async (): Promise<Record<string, number>> => {
    const rows = await ctx.store.db
      .selectFrom('agent_runs')
      .innerJoin('tasks', 'tasks.id', 'agent_runs.task_id')
      .select(['agent_runs.variant', 'agent_runs.task_id', 'tasks.status'])
      .where('agent_runs.agent', '=', 'developer')
      .execute();
    const tasks: Record<string, Set<number>> = {};
    for (const r of rows) if (r.status === 'done') (tasks[r.variant!] ??= new Set()).add(r.task_id);
    return Object.fromEntries(Object.entries(tasks).map(([v, s]) => [v, s.size]));
  };

  beforeAll(async () => {
    project = makeProject({
      files: {
        'scripts/careful.yaml': stringify(developer(0.3)),
        'scripts/quick.yaml': stringify(developer(0.1)),
        'scripts/reviewer.yaml': stringify({
          tasks: [
            {
              match: { title: 'tricky' },
              roles: { reviewer: { attempts: { 1: [{ verdict: 'rejected' }] } } },
            },
          ],
        }),
      },
      config: {
        agents: {
          default: { adapter: 'scripted', script: 'scripts/reviewer.yaml' },
          developer: { variants: VARIANTS },
        },
        pipeline: Object.fromEntries(
          ['analysis', 'architecture', 'testing', 'deploy-staging', 'deploy'].map((s) => [
            s,
            { enabled: false },
          ]),
        ),
      },
    });
    server = await serve(project);
    url = server.url;
    ctx = await project.context();
    for (const title of ['plain one', 'tricky one', 'plain two', 'tricky two', 'plain three'])
      await addTask(title);
    await allDone(5);
    browser = await launchChromium();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await ctx?.close();
    if (server) expect(await server.stop(), server.output()).toBe(0);
    project?.cleanup();
  }, 60_000);

  const cell = (page: Page, group: string, column: string) =>
    page.locator(`table.stats tr[data-group="${group}"] td.${column}`);

  it('shows the figures per setup, regroups by variant with the comparison, and follows new work live', async () => {
    const page = await newPage();
    await page.goto(`${url}/#/stats`);
    await page.locator('.live.on').waitFor({ timeout: 15_000 });
    // The default grouping, role, model and effort: the variants' models are the developer's setups.
    await page.locator('table.stats').waitFor({ timeout: 15_000 });
    const done = await doneByVariant();
    expect(Object.keys(done).sort()).toEqual(['careful', 'quick']);
    await expect(cell(page, 'developer/model-careful/max', 'done').textContent()).resolves.toBe(
      String(done.careful),
    );
    await expect(cell(page, 'developer/model-quick/xhigh', 'done').textContent()).resolves.toBe(
      String(done.quick),
    );
    await expect(cell(page, 'reviewer/claude-opus-4-8/high', 'done').textContent()).resolves.toBe('5');
    await shot(page, '01-by-setup');

    // Regroup: variant on, model and effort off.
    const groupBy = page.getByRole('group', { name: 'Group by' });
    for (const name of ['variant', 'model', 'effort']) await groupBy.getByRole('button', { name }).click();
    await page.locator('table.stats tr[data-group="developer/careful"]').waitFor({ timeout: 10_000 });
    await expect(page.locator('table.stats thead th').first().textContent()).resolves.toBe('role');
    await expect(page.locator('table.stats thead th').nth(1).textContent()).resolves.toBe('variant');
    await expect(cell(page, 'developer/careful', 'done').textContent()).resolves.toBe(String(done.careful));
    await expect(cell(page, 'developer/quick', 'done').textContent()).resolves.toBe(String(done.quick));
    // Each variant's first-pass rate is its approved first attempts over its first attempts, from the tables.
    for (const v of ['careful', 'quick']) {
      const first = await ctx.store.db
        .selectFrom('attempts')
        .innerJoin('agent_runs', 'agent_runs.id', 'attempts.dev_run_id')
        .select(['attempts.verdict'])
        .where('attempts.n', '=', 1)
        .where('agent_runs.variant', '=', v)
        .execute();
      const approved = first.filter((a) => a.verdict === 'approved').length;
      await expect(cell(page, `developer/${v}`, 'first-pass').locator('.rate').textContent()).resolves.toBe(
        `${Math.round((approved / first.length) * 100)}%`,
      );
      await expect(cell(page, `developer/${v}`, 'first-pass').textContent()).resolves.toContain(
        `${approved}/${first.length}`,
      );
    }
    const comparison = page.locator('.comparison[data-pair="careful/quick"]');
    await expect(comparison.locator('h3').textContent()).resolves.toContain('careful vs quick');
    await expect(comparison.textContent()).resolves.toMatch(/first-pass approval: .*cost per done task: /);
    await shot(page, '02-by-variant');

    // A task finished while the page is open is counted without a reload.
    const before = await doneByVariant();
    await addTask('plain four');
    await allDone(6);
    const after = await doneByVariant();
    const grew = Object.keys(after).find((v) => after[v] !== before[v])!;
    await page
      .locator(`table.stats tr[data-group="developer/${grew}"] td.done`, { hasText: String(after[grew]) })
      .waitFor({ timeout: 15_000 });
    await shot(page, '03-live');

    // A task's page shows its developer runs' variant beside model and effort.
    const t1 = await ctx.store.getTaskByKey('T-1');
    const dev = (await ctx.store.runsOfTask(t1.id)).find((r) => r.agent === 'developer')!;
    await page.goto(`${url}/#/tasks/T-1`);
    const model = page.locator('table.runs tr', { hasText: 'developer' }).first().locator('td.model');
    await expect(model.textContent()).resolves.toBe(
      `${dev.model!.replace(/^claude-/, '')} · ${dev.effort} (${dev.variant})`,
    );
    await page.close();
  });

  it('fits a phone: no page-wide horizontal scrolling', async () => {
    const page = await newPage(390, 844);
    await page.goto(`${url}/#/stats`);
    await page.locator('table.stats').waitFor({ timeout: 15_000 });
    const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'));
    expect(overflow).toBeLessThanOrEqual(0);
    await shot(page, '04-narrow');
    await page.close();
  });
});
