/**
 * `orch demo`: a sample library in a temporary repository, three tasks, the
 * whole pipeline with the scripted agent — one clean pass, one review
 * rejection and its rework, one oscillation that escalates with a terminal
 * packet — then a summary table.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { git } from '../../runtime/git.ts';
import { openContext } from '../../runtime/context.ts';
import { initCommand } from './init.ts';
import { addTask } from '../../runtime/tasks.ts';
import { runCommand } from './run.ts';
import { taskDetail } from '../../runtime/views.ts';
import { startServer } from '../../http/server.ts';
import { ensureDashboard } from '../../http/dashboard.ts';
import { duration, table, usd } from '../../core/format.ts';
import { elapsedMs } from '../../core/stages.ts';
import type { Logger } from '../../runtime/logger.ts';
import { printLine } from '../output.ts';

const LIBRARY = {
  'package.json':
    JSON.stringify(
      { name: 'numkit', version: '1.0.0', type: 'module', scripts: { test: 'node --test' } },
      null,
      2,
    ) + '\n',
  'README.md': '# numkit\n\nSmall number and string helpers.\n',
  'src/sum.js': 'export const sum = (xs) => xs.reduce((a, b) => a + b, 0);\n',
  'test/sum.test.js':
    "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\nimport { sum } from '../src/sum.js';\n\ntest('sum', () => assert.equal(sum([1, 2, 3]), 6));\n",
};

const clampImpl = 'export const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));\n';
const clampTest =
  "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\nimport { clamp } from '../src/clamp.js';\n\ntest('clamp', () => {\n  assert.equal(clamp(5, 0, 3), 3);\n  assert.equal(clamp(-1, 0, 3), 0);\n  assert.equal(clamp(2, 0, 3), 2);\n});\n";
const slugV1 = "export const slugify = (s) => s.toLowerCase().replace(/\\s+/g, '-');\n";
const slugV2 =
  "export const slugify = (s) =>\n  s\n    .trim()\n    .toLowerCase()\n    .replace(/[^a-z0-9]+/g, '-')\n    .replace(/^-+|-+$/g, '');\n";
const slugTest =
  "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\nimport { slugify } from '../src/slugify.js';\n\ntest('slugify', () => {\n  assert.equal(slugify('Hello World'), 'hello-world');\n  assert.equal(slugify('  Ünïcode & Co!  '), 'n-code-co');\n});\n";
const roundHalfUp = 'export const round = (x) => Math.floor(x + 0.5);\n';
const roundBankers =
  'export const round = (x) => {\n  const f = Math.floor(x);\n  const d = x - f;\n  return d === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(x);\n};\n';

const write = (path: string, content: string) => ({ write: { path, content } });

export const DEMO_SCRIPT = {
  tasks: [
    {
      match: { title: 'clamp' },
      roles: {
        developer: {
          default: [
            write('src/clamp.js', clampImpl),
            write('test/clamp.test.js', clampTest),
            { run: ['node', '--test'] },
          ],
        },
      },
    },
    {
      match: { title: 'slugify' },
      roles: {
        developer: {
          attempts: {
            1: [write('src/slugify.js', slugV1)],
            2: [
              write('src/slugify.js', slugV2),
              write('test/slugify.test.js', slugTest),
              { run: ['node', '--test'] },
            ],
          },
        },
        reviewer: {
          attempts: {
            1: [
              { verdict: 'rejected', comments: 'Strip punctuation and surrounding spaces, and add a test.' },
            ],
            2: [{ verdict: 'approved', comments: 'Handles punctuation and has tests.' }],
          },
        },
      },
    },
    {
      match: { title: 'rounding' },
      roles: {
        developer: {
          attempts: {
            1: [write('src/round.js', roundHalfUp)],
            2: [write('src/round.js', roundBankers)],
            3: [write('src/round.js', roundHalfUp)],
          },
        },
        reviewer: {
          attempts: {
            1: [{ verdict: 'rejected', comments: "Half-up rounding biases sums: use banker's rounding." }],
            2: [{ verdict: 'rejected', comments: "Banker's rounding surprises users: use half-up." }],
            3: [{ verdict: 'rejected', comments: "Half-up rounding biases sums: use banker's rounding." }],
          },
        },
      },
    },
  ],
};

export async function demoCommand(opts: {
  keep: boolean;
  log: Logger;
  print?: (line: string) => void;
  dir?: string;
}): Promise<{ dir: string; statuses: Record<string, string> }> {
  const print = opts.print ?? printLine;
  const started = Date.now();
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'orch-demo-'));
  for (const [path, content] of Object.entries(LIBRARY)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  await git(dir, ['init', '-q', '-b', 'main']);
  await git(dir, ['add', '-A']);
  await git(dir, [
    '-c',
    'user.name=demo',
    '-c',
    'user.email=demo@localhost',
    'commit',
    '-q',
    '-m',
    'numkit: sum',
  ]);
  const env = {
    ...process.env,
    ORCH_HOME: dir,
    ORCH_DB_PATH: undefined,
    ORCH_REPOS_DIR: undefined,
    ORCH_RETRY_BASE_MS: '200',
  };
  mkdirSync(join(dir, '.orch'), { recursive: true });
  writeFileSync(join(dir, '.orch', 'demo-script.yaml'), stringify(DEMO_SCRIPT));
  writeFileSync(
    join(dir, 'orch.yaml'),
    `project:\n  name: numkit\n  key_prefix: DEMO\n  base_branch: main\n  test_command: ["node", "--test"]\nagents:\n  default:\n    adapter: scripted\n    script: .orch/demo-script.yaml\nbudget:\n  max_attempts: 4\n`,
  );
  await initCommand(dir, env, { agent: 'scripted', name: 'numkit' });
  print(`orch demo — sample repository ${dir}\n`);
  const ctx = await openContext(dir, env);
  // The dashboard, for as long as the demo runs.
  await ensureDashboard();
  const server = await startServer(ctx, { port: 0, log: opts.log }).catch((error: Error) => {
    print(`dashboard unavailable: ${error.message}`);
    return null;
  });
  if (server) print(`dashboard: ${server.url}\n`);
  try {
    const tasks = [
      await addTask(ctx, 'Add a clamp function', {
        description: 'clamp(x, lo, hi) keeps x within [lo, hi], with tests.',
      }),
      await addTask(ctx, 'Add slugify', {
        description: 'slugify(text) makes URL slugs: lower case, dashes, no punctuation.',
      }),
      await addTask(ctx, 'Choose a rounding mode', {
        description: 'round(x) for prices; the reviewers disagree on the mode.',
      }),
    ];
    for (const t of tasks) print(`added ${t.key}  ${t.title}`);
    print('');
    await runCommand(ctx, opts.log, { untilIdle: true, concurrency: 3, print });
    const rows: (string | number)[][] = [];
    const statuses: Record<string, string> = {};
    const packets: string[] = [];
    for (const t of tasks) {
      const d = await taskDetail(ctx, await ctx.store.getTaskByKey(t.key));
      statuses[d.key] = d.status;
      const wall = elapsedMs(d);
      rows.push([
        d.key,
        d.title,
        d.status + (d.terminal_reason ? ` (${d.terminal_reason})` : ''),
        d.attempts.length,
        d.runs.length,
        d.totals.input_tokens + d.totals.output_tokens,
        usd(d.totals.cost_usd),
        duration(wall),
      ]);
      if (d.artifacts.terminal_packet) packets.push(`${d.key}: ${d.artifacts.terminal_packet}`);
    }
    const log = await git(dir, ['log', '--oneline', '-n', '5', 'main']);
    print(`\n${table(['TASK', 'TITLE', 'STATUS', 'ATTEMPTS', 'RUNS', 'TOKENS', 'COST', 'WALL'], rows)}\n`);
    if (packets.length) print(`terminal packets:\n  ${packets.join('\n  ')}\n`);
    print(`main branch now:\n${log.trimEnd().replace(/^/gm, '  ')}\n`);
    print(
      `demo finished in ${duration(Date.now() - started)}${opts.keep ? ` — repository kept at ${dir}` : ''}`,
    );
    return { dir, statuses };
  } finally {
    await server?.close();
    await ctx.close();
    if (!opts.keep && !opts.dir) rmSync(dir, { recursive: true, force: true });
  }
}
