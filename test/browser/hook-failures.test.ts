/**
 * A failed workspace hook on the dashboard's task page: a task whose `after_run` fails (not
 * fatal, so the task reaches done) shows it under "Hook failures", with how it ended and its
 * output, secrets redacted. Against a real `orch serve`, in Chromium.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { makeProject, ONLY_DEVELOPMENT, type TempProject } from '../helpers/kit.ts';
import { chromiumMissing, launchChromium, openPage, serve, type Served } from '../helpers/browser.ts';

const SECRET = 'hunter2-dashboard-secret';

describe.skipIf(chromiumMissing())('hook failures on the dashboard', () => {
  let project: TempProject | undefined;
  let server: Served | undefined;
  let browser: Browser | undefined;

  afterAll(async () => {
    await browser?.close();
    if (server) expect(await server.stop(), server.output()).toBe(0);
    project?.cleanup();
  }, 60_000);

  it("shows a task's failed after_run with its output, redacted", async () => {
    project = makeProject({
      config: {
        pipeline: ONLY_DEVELOPMENT,
        hooks: { after_run: `echo "lint: 3 problems (token ${SECRET})"; exit 5` },
      },
    });
    expect(project.orch(['task', 'add', 'hooked']).code).toBe(0);
    const env = { MY_LINT_TOKEN: SECRET };
    const r = project.orch(['run', '--until-idle'], { env });
    expect(r.code, r.stderr).toBe(0);
    server = await serve(project, env);
    browser = await launchChromium();
    const page = await openPage(browser);
    await page.goto(`${server.url}/#/tasks/T-1`);
    await page.locator('.task-head .pill-done').waitFor({ timeout: 30_000 });
    const failure = page.locator('#hooks details.hook-failure');
    await expect(failure.count()).resolves.toBe(1);
    const summary = (await failure.locator('summary').textContent()) ?? '';
    expect(summary).toContain('after_run');
    expect(summary).toContain('development');
    expect(summary).toContain('not fatal');
    await failure.locator('summary').click();
    const output = (await failure.locator('pre').textContent()) ?? '';
    expect(output).toContain('hooks.after_run failed: exit 5');
    expect(output).toContain('lint: 3 problems (token [REDACTED])');
    expect(await page.content()).not.toContain(SECRET);
    await page.close();
  });
});
