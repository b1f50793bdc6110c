/**
 * "Send now" on the dashboard's task page (`task say --now`): against a real `orch serve` whose
 * workers run a command agent that works until it hears from a person. The button stops the
 * running agent, the page says which run it stopped, and the stage runs again at once with the
 * message, the stopped run not counted as a try. In Chromium.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { makeProject, ONLY_DEVELOPMENT, type TempProject } from '../helpers/kit.ts';
import { chromiumMissing, launchChromium, openPage, serve, type Served } from '../helpers/browser.ts';

const WORD = 'use-the-blue-widget';
// Works (sleeps) until its prompt carries the person's word, then answers.
const AGENT = `
echo '{"type":"system","subtype":"init","session_id":"s-1","model":"m"}'
if grep -q ${WORD} "$ORCH_PROMPT_FILE"; then
  echo heard > heard.txt
  echo '{"type":"result","subtype":"success","is_error":false,"result":"done as told"}'
  exit 0
fi
sleep 60
`;

describe.skipIf(chromiumMissing())('Send now on the dashboard', () => {
  let project: TempProject | undefined;
  let server: Served | undefined;
  let browser: Browser | undefined;

  afterAll(async () => {
    await browser?.close();
    if (server) expect(await server.stop(), server.output()).toBe(0);
    project?.cleanup();
  }, 60_000);

  it('stops the running agent and runs the stage again with the message, uncounted', async () => {
    project = makeProject({
      config: {
        agents: {
          default: { adapter: 'scripted' },
          developer: { adapter: 'command', command: ['sh', '-c', AGENT] },
        },
        pipeline: ONLY_DEVELOPMENT,
      },
    });
    expect(project.orch(['task', 'add', 'listen to me']).code).toBe(0);
    server = await serve(project, { ORCH_LEASE_TTL_MS: '3000' });
    browser = await launchChromium();
    const page = await openPage(browser);
    await page.goto(`${server.url}/#/tasks/T-1`);
    // The agent is running: its run shows on the task page.
    const url = server.url;
    const running = async () => {
      const agents = (await (await fetch(`${url}/api/agents`)).json()) as { task: string; run_id: number }[];
      return agents.find((a) => a.task === 'T-1');
    };
    let first: { run_id: number } | undefined;
    for (let i = 0; i < 300 && !first; i += 1) {
      first = await running();
      if (!first) await new Promise((r) => setTimeout(r, 100));
    }
    expect(first, server.output()).toBeDefined();
    await page.locator('.message-form textarea').fill(`Please ${WORD}.`);
    await page.locator('.message-form button.send-now').click();
    const note = page.locator('.say-note');
    await note.waitFor({ timeout: 30_000 });
    expect(await note.textContent()).toBe(
      `stopped run ${first!.run_id}: the stage runs again with your message`,
    );
    await page.locator('.task-head .pill-done').waitFor({ timeout: 60_000 });
    const detail = (await (await fetch(`${url}/api/tasks/T-1`)).json()) as {
      runs: { id: number; outcome: string }[];
      messages: { delivered_run_id: number | null }[];
    };
    const outcomes = detail.runs.filter((r) => r.id >= first!.run_id).map((r) => r.outcome);
    expect(outcomes).toEqual(['redirected', 'ok']);
    expect(detail.messages[0]!.delivered_run_id).toBeGreaterThan(first!.run_id);
    expect(project.git(['show', 'main:heard.txt'])).toBe('heard\n');
    await page.close();
  }, 120_000);
});
