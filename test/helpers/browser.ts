/**
 * The dashboard's browser tests: a real `orch serve` on a free port, Debian's
 * Chromium through playwright-core, pages that fail the test on a script
 * error, and screenshots under test-results/ (git-ignored).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from './kit.ts';

export const CHROMIUM = '/usr/bin/chromium';

/** Whether Chromium is missing, said once on stderr: the browser tests are then skipped. */
export function chromiumMissing(): boolean {
  const missing = !existsSync(CHROMIUM);
  if (missing)
    process.stderr.write(
      `test/browser: skipped — ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)\n`,
    );
  return missing;
}

export { serve, type Served } from './serve.ts';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
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
}

/** A page of the given viewport whose script errors fail the test. */
export async function openPage(browser: Browser, width = 1360, height = 900): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height } });
  page.on('pageerror', (e) => {
    throw new Error(`page error: ${e.message}`);
  });
  return page;
}

/** Screenshots into test-results/<dir>/<name>.png. */
export function screenshots(dir: string): (page: Page, name: string) => Promise<Buffer> {
  const shots = join(ROOT, 'test-results', dir);
  mkdirSync(shots, { recursive: true });
  return (page, name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}
