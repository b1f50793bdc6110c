/**
 * A command loads kysely, zod and yaml from one file each (src/cli/bundled-deps.ts), the bundles
 * `npm ci` made in this checkout (the `prepare` script), and the same command still works without.
 * `--version`, `--help` and `completion` load none of them: the store and the config are loaded
 * by the commands that open them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, makeProject, ROOT } from '../helpers/kit.ts';
import { disposeAfterEach } from '../helpers/dispose.ts';

const own = disposeAfterEach();

/** A hook that prints, as the process exits, every module URL it loaded. */
const RECORD = `data:text/javascript,${encodeURIComponent(`
import { registerHooks } from 'node:module';
const loaded = [];
registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(loaded) + '\\n'));
`)}`;

function start(args: string[], env: Record<string, string> = {}, cwd?: string) {
  const r = spawnSync(process.execPath, ['--import', RECORD, CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    ...(cwd ? { cwd } : {}),
  });
  const line = r.stderr.split('\n').find((l) => l.startsWith('LOADED '));
  const loaded = line ? (JSON.parse(line.slice('LOADED '.length)) as string[]) : [];
  const fromPackage = (name: string) => loaded.filter((u) => u.includes(`/node_modules/${name}/`));
  return { status: r.status, stdout: r.stdout, loaded, fromPackage };
}

describe('a command start', () => {
  it('loads kysely, zod and yaml from their bundles, not module by module', () => {
    const manifest = join(ROOT, 'node_modules', '.cache', 'orch-deps', 'manifest.json');
    expect(
      existsSync(manifest),
      `${manifest} is missing: npm ci makes it (node scripts/bundle-deps.ts)`,
    ).toBe(true);
    const project = own(makeProject());
    const r = start(['task', 'list'], {}, project.dir);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('no tasks');
    for (const name of ['kysely', 'zod', 'yaml']) {
      expect(r.fromPackage(name)).toEqual([]);
      expect(r.loaded.filter((u) => u.includes(`/node_modules/.cache/orch-deps/${name}-`))).toHaveLength(1);
    }
  });

  it('loads them as packages with ORCH_BUNDLED_DEPS=0, and answers the same', () => {
    const project = own(makeProject());
    const bundled = start(['task', 'list'], {}, project.dir);
    const plain = start(['task', 'list'], { ORCH_BUNDLED_DEPS: '0' }, project.dir);
    expect(plain.status).toBe(0);
    expect(plain.stdout).toBe(bundled.stdout);
    // kysely alone is hundreds of modules: what the bundles save at every start.
    expect(plain.fromPackage('kysely').length).toBeGreaterThan(100);
    expect(plain.fromPackage('zod').length).toBeGreaterThan(10);
    expect(plain.loaded.filter((u) => u.includes('/orch-deps/'))).toEqual([]);
    expect(bundled.loaded.length).toBeLessThan(plain.loaded.length - 300);
  });

  it('--version, --help and completion load neither the store, the config nor a dependency', () => {
    for (const args of [['--version'], ['--help'], ['completion', 'bash']]) {
      const r = start(args);
      expect(r.status, args.join(' ')).toBe(0);
      expect(r.stdout.length).toBeGreaterThan(0);
      const heavy = r.loaded.filter((u) =>
        /\/(store|config|trackers)\/|orch-deps|node_modules\/(kysely|zod|yaml|liquidjs)\//.test(u),
      );
      expect(heavy, args.join(' ')).toEqual([]);
    }
  });
});
