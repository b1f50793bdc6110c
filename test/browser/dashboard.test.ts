/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core)
 * against a real `orch serve` with the scripted agent: create a task on the
 * board, watch its log arrive line by line while its developer runs, see it
 * reach `done` live; read a terminal packet and retry that task with a raised
 * budget; and check the pages at a phone's width. Screenshots go to
 * test-results/ (git-ignored), for people and for CI artifacts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT, makeProject, processesIn, waitFor, type TempProject } from '../helpers/kit.ts';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(ROOT, 'test-results', 'dashboard');
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

const missing = !existsSync(CHROMIUM);
if (missing)
  process.stderr.write(
    `test/browser: skipped — ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)\n`,
  );

describe.skipIf(missing)('the dashboard in Chromium, against orch serve', () => {
  let project: TempProject;
  let server: ChildProcess;
  let url = '';
  let browser: Browser;
  let serverOut = '';

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    project = makeProject({ script: SCRIPT, config: { budget: { max_attempts: 1 } } });
    server = project.spawnOrch(['serve', '--port', '0']);
    server.stdout!.on('data', (b: Buffer) => (serverOut += b.toString()));
    server.stderr!.on('data', (b: Buffer) => (serverOut += b.toString()));
    url = await waitFor(
      () => /orch serve: (http:\/\/\S+)/.exec(serverOut)?.[1],
      90_000,
      `orch serve to start:\n${serverOut}`,
    );
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (server && server.exitCode === null) {
      const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
      server.kill('SIGTERM');
      const code = await exited;
      // SIGTERM stops the scheduler and the server cleanly.
      expect(code, serverOut).toBe(0);
    }
    // No agent outlives the server.
    await waitFor(() => processesIn(project.dir).length === 0, 10_000, 'agents to exit');
    project?.cleanup();
  }, 60_000);

  const newPage = async (width = 1360, height = 900): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width, height } });
    page.on('pageerror', (e) => {
      throw new Error(`page error: ${e.message}`);
    });
    return page;
  };
  const shot = (page: Page, name: string) =>
    page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

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
    // The lines arrived as they were written (about STEP_MS apart), not all at once at the end.
    expect(lastSeen - firstSeen).toBeGreaterThanOrEqual((STEPS - 2) * STEP_MS);
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
