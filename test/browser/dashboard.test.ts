/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core)
 * against a real `orch serve` with the scripted agent: create a task on the
 * board, watch its log arrive line by line while its developer runs, see it
 * reach `done` live; read a terminal packet and retry that task with a raised
 * budget; and check the pages at a phone's width. Screenshots go to
 * test-results/ (git-ignored), for people and for CI artifacts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { makeProject, type TempProject } from '../helpers/kit.ts';
import {
  chromiumMissing,
  launchChromium,
  openPage,
  screenshots,
  serve,
  type Served,
} from '../helpers/browser.ts';

const STEPS = 5;
const STEP_MS = 500;

const SCRIPT = {
  tasks: [
    {
      // The developer speaks every half second, so its lines arrive over about 2 s.
      match: { title: 'greeting' },
      roles: {
        // A slow analyst: time to open the task page before the developer starts.
        analyst: {
          default: [
            { sleep_ms: 1500 },
            {
              write: {
                path: 'docs/tasks/{{key}}/requirements.md',
                content: '# Requirements\n\nSay hello.\n',
              },
            },
            { write: { path: 'docs/tasks/{{key}}/test-plan.md', content: '# Test plan\n\nRead it.\n' } },
          ],
        },
        developer: {
          default: [
            ...Array.from({ length: STEPS }, (_, i) => [
              { message: `step ${i + 1} of ${STEPS}: working on {{key}}` },
              { sleep_ms: STEP_MS },
            ]).flat(),
            { write: { path: 'greeting.txt', content: 'hello\n' } },
          ],
        },
      },
    },
    {
      // Rejected once: with a budget of one attempt it escalates, with a terminal packet.
      match: { title: 'rounding' },
      roles: {
        reviewer: {
          attempts: {
            1: [{ verdict: 'rejected', comments: "Use banker's rounding." }],
            2: [{ verdict: 'approved', comments: 'Fine.' }],
          },
        },
      },
    },
  ],
};

describe.skipIf(chromiumMissing())('the dashboard in Chromium, against orch serve', () => {
  let project: TempProject;
  let server: Served;
  let url = '';
  let browser: Browser;
  const shot = screenshots('dashboard');
  const newPage = (width?: number, height?: number): Promise<Page> => openPage(browser, width, height);

  beforeAll(async () => {
    project = makeProject({ script: SCRIPT, config: { budget: { max_attempts: 1 } } });
    server = await serve(project);
    url = server.url;
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    // SIGTERM stops the scheduler and the server cleanly, and no agent outlives them.
    if (server) expect(await server.stop(), server.output()).toBe(0);
    project?.cleanup();
  }, 60_000);

  it('creates a task on the board, streams its developer log live, and shows it reach done', async () => {
    const page = await newPage();
    await page.goto(url);
    await page.locator('.live.on').waitFor({ timeout: 15_000 });
    await page.getByRole('button', { name: 'New task' }).click();
    await page.locator('input[name=title]').fill('Add a greeting');
    await page.locator('textarea[name=description]').fill('Print hello, slowly.');
    await shot(page, '01-new-task-form');
    await page.getByRole('button', { name: 'Add task' }).click();

    const card = page.locator('a.task-card', { hasText: 'Add a greeting' });
    await card.waitFor({ timeout: 10_000 });
    const key = (await card.getAttribute('data-key'))!;
    expect(key).toMatch(/^T-\d+$/);
    // The board moves by itself: the card leaves `created` without a reload.
    await page.locator(`.column[data-stage=analysis] a[data-key="${key}"]`).waitFor({ timeout: 15_000 });
    await shot(page, '02-board-moving');

    // A second tab on the agents page, kept live by its own event stream.
    const agents = await newPage();
    await agents.goto(`${url}/#/agents`);
    await agents.locator('.live.on').waitFor({ timeout: 15_000 });

    await card.click();
    await page.locator('.task-head h1', { hasText: key }).waitFor();
    const logText = page.locator('.log .log-line .text');
    await logText.filter({ hasText: `step 1 of ${STEPS}` }).waitFor({ timeout: 30_000 });
    const firstSeen = Date.now();
    // While the first line is shown, the developer is still running and its last line not written.
    await expect(page.locator('tr.running td', { hasText: 'developer' }).count()).resolves.toBeGreaterThan(0);
    expect(await logText.filter({ hasText: `step ${STEPS} of ${STEPS}` }).count()).toBe(0);
    // The developer is listed among the agents in flight, with its model and effort.
    const developer = agents.locator('table.agents tr', { hasText: 'developer' });
    await developer.waitFor({ timeout: 5_000 });
    await expect(developer.locator('td.model').textContent()).resolves.toBe('opus-4-8 · xhigh');
    await shot(agents, '03-agents-running');
    await agents.close();
    await logText.filter({ hasText: 'step 3 of' }).waitFor({ timeout: 10_000 });
    await shot(page, '04-task-log-live');
    await logText.filter({ hasText: `step ${STEPS} of ${STEPS}` }).waitFor({ timeout: 10_000 });
    const lastSeen = Date.now();
    // The lines arrived as they were written (about STEP_MS apart), not all at once at the end
    // (a margin of one step: on a loaded machine the first line may be seen a little late).
    expect(lastSeen - firstSeen).toBeGreaterThanOrEqual((STEPS - 3) * STEP_MS);
    const steps = await logText.filter({ hasText: /step \d of/ }).allTextContents();
    expect(steps.map((s) => s.slice(0, 9))).toEqual(
      Array.from({ length: STEPS }, (_, i) => `step ${i + 1} of`),
    );

    await page.locator('.task-head .pill-done').waitFor({ timeout: 60_000 });
    const rows = page.locator('table.runs tbody tr');
    expect(await rows.count()).toBe(7);
    await expect(page.locator('table.runs td.model').first().textContent()).resolves.toBe('opus-4-8 · high');
    await expect(
      page.locator('table.runs tr', { hasText: 'developer' }).locator('td.model').textContent(),
    ).resolves.toBe('opus-4-8 · xhigh');
    await page.locator('.timeline .step.current', { hasText: 'done' }).waitFor();
    await shot(page, '05-task-done');

    await page.getByRole('link', { name: '← Board' }).click();
    await page.locator(`.column[data-stage=done] a[data-key="${key}"]`).waitFor({ timeout: 10_000 });
    await shot(page, '06-board-done');
    await page.close();
  });

  it('renders a terminal packet and retries the task with a raised budget', async () => {
    const res = await fetch(`${url}/api/tasks`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'Choose a rounding mode' }),
    });
    expect(res.status).toBe(201);
    const { key } = (await res.json()) as { key: string };
    const page = await newPage();
    await page.goto(`${url}/#/tasks/${key}`);
    await page.locator('.task-head .pill-escalated').waitFor({ timeout: 60_000 });
    const packet = page.locator('#packet .markdown');
    await packet.locator('h1', { hasText: `Terminal packet: ${key}` }).waitFor({ timeout: 10_000 });
    // The packet's Markdown table is a table, and its code is code.
    await expect(packet.locator('table th').first().textContent()).resolves.toBe('#');
    await expect(packet.locator('code', { hasText: 'max_attempts' }).count()).resolves.toBeGreaterThan(0);
    await expect(page.locator('table.attempts tbody tr').count()).resolves.toBe(1);
    await shot(page, '07-terminal-packet');

    await page.getByRole('button', { name: 'Retry…' }).click();
    await page.locator('input[name=max_attempts]').fill('3');
    await page.getByRole('button', { name: 'Retry', exact: true }).click();
    await page.locator('.task-head .pill-done').waitFor({ timeout: 60_000 });
    await expect(page.locator('table.attempts tbody tr').count()).resolves.toBe(2);
    await shot(page, '08-retried-done');
    await page.close();
  });

  it("shows a task's dependencies on both ends, each linked to its page", async () => {
    const post = async (body: unknown) => {
      const res = await fetch(`${url}/api/tasks`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(201);
      return ((await res.json()) as { key: string }).key;
    };
    const first = await post({ title: 'Schema first' });
    const then = await post({ title: 'Then the screens', after: [first] });
    const page = await newPage();
    await page.goto(`${url}/#/tasks/${then}`);
    const waits = page.locator('#dependencies .deps', { hasText: 'Waits for' });
    await waits.locator(`li[data-key="${first}"]`, { hasText: 'Schema first' }).waitFor({ timeout: 10_000 });
    await shot(page, '09-dependencies');
    await waits.locator(`a[href="#/tasks/${first}"]`).click();
    await page
      .locator('#dependencies .deps', { hasText: 'Blocks' })
      .locator(`li[data-key="${then}"]`)
      .waitFor({ timeout: 10_000 });
    await page.close();
  });

  it('fits a phone: no page-wide horizontal scrolling on the board, a task, costs and agents', async () => {
    const page = await newPage(390, 844);
    for (const [hash, name] of [
      ['#/', 'board'],
      ['#/tasks/T-1', 'task'],
      ['#/costs', 'costs'],
      ['#/agents', 'agents'],
    ] as const) {
      await page.goto(`${url}/${hash}`);
      await page.locator('.live.on').waitFor({ timeout: 15_000 });
      await page.waitForTimeout(300);
      const overflow = Number(
        await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'),
      );
      expect(overflow, name).toBeLessThanOrEqual(0);
      await shot(page, `10-narrow-${name}`);
    }
    // Today's bar of the costs chart has the spend of the runs above.
    await page.goto(`${url}/#/costs`);
    const today = page.locator('.chart svg rect.bar').last();
    await today.waitFor();
    expect(Number(await today.getAttribute('height'))).toBeGreaterThan(0);
    await page.close();
  });
});
