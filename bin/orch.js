#!/usr/bin/env node
// orch's executable. The sources are TypeScript run by Node 24's type stripping, so a checkout
// needs no build step. Under an older Node, it re-runs itself with the Node 24 that the `node@24`
// dev dependency installed beside it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major >= 24) {
  await import('../src/cli/main.ts');
} else {
  const node24 = fileURLToPath(new URL('../node_modules/.bin/node', import.meta.url));
  const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
  if (!existsSync(node24)) {
    process.stderr.write(
      `orch: needs Node 24 (this is ${process.version}); run \`npx -y -p node@24 -- npm ci\` in orch's directory\n`,
    );
    process.exit(1);
  }
  const r = spawnSync(node24, [main, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
