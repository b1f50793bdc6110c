/**
 * Bundles the dependencies every orch command loads (kysely, zod, yaml) into one file each, so a
 * command starts in about half the time (docs/performance.md, "Command start").
 *
 * Why: Node loads a package module by module. kysely is 257 modules, zod 95, yaml 72: resolving,
 * reading and linking them was about 200 ms of the 400 ms `orch task list` took, on every command a
 * person or a script runs, and on every `orch run`, `worker` and `serve` start. One file each
 * loads in a few milliseconds. The code is the packages' own, unchanged (rolldown only joins the
 * modules), and `src/cli/bundled-deps.ts` uses a bundle only while the installed package has the
 * version it was made from, so an upgraded dependency is never shadowed by an old bundle.
 *
 *   node scripts/bundle-deps.ts [OUT_DIR]
 *
 * OUT_DIR defaults to `node_modules/.cache/orch-deps` (made by `npm ci`/`npm install` through the
 * `prepare` script); `npm run build` writes `dist/deps` for the package. `OUT_DIR/manifest.json`
 * names each bundle, its package's version and its SHA-256. Never fails an install: a package
 * that cannot be bundled is left out (it then loads as usual), and the reason is printed; the
 * `prepare` script also goes on when this file cannot run at all (a Node without type stripping,
 * an install without dev dependencies).
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BUNDLED,
  bundleFile,
  installedVersion,
  sha256,
  type BundleManifest,
} from '../src/cli/bundled-deps.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/**
 * An entry that re-exports every export of the specifiers by name (a CommonJS package's names too,
 * which `export *` would lose), each name once.
 */
async function entrySource(specifiers: readonly string[]): Promise<string> {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const spec of specifiers) {
    const mod = (await import(spec)) as Record<string, unknown>;
    const names = Object.keys(mod).filter((k) => k !== 'default' && IDENTIFIER.test(k) && !seen.has(k));
    for (const n of names) seen.add(n);
    if (names.length > 0) lines.push(`export { ${names.join(', ')} } from '${spec}';`);
    if ('default' in mod && !seen.has('default')) {
      seen.add('default');
      lines.push(`export { default } from '${spec}';`);
    }
  }
  return lines.join('\n') + '\n';
}

export async function bundleDeps(outDir: string): Promise<BundleManifest> {
  const { build } = await import('rolldown');
  mkdirSync(outDir, { recursive: true });
  // Built beside where it goes (a rename across file systems, /tmp on tmpfs, would fail).
  const work = mkdtempSync(join(outDir, '.work-'));
  const manifest: BundleManifest = {};
  try {
    for (const [name, specifiers] of Object.entries(BUNDLED)) {
      const version = installedVersion(name, import.meta.resolve);
      if (!version) {
        console.error(`bundle-deps: ${name} is not installed; left out`);
        continue;
      }
      try {
        const entry = join(work, `${name}.entry.mjs`);
        writeFileSync(entry, await entrySource(specifiers));
        const file = bundleFile(name, version);
        await build({
          input: entry,
          cwd: ROOT,
          platform: 'node',
          logLevel: 'silent',
          // Resolved from orch's own node_modules, as orch's imports are.
          resolve: { modules: [join(ROOT, 'node_modules')] },
          output: { file: join(work, file), format: 'esm' },
        });
        const hash = sha256(readFileSync(join(work, file)));
        renameSync(join(work, file), join(outDir, file));
        manifest[name] = { file, version, sha256: hash };
      } catch (error) {
        console.error(`bundle-deps: ${name} could not be bundled (it loads as usual): ${String(error)}`);
      }
    }
    // Nothing made: an earlier manifest (its bundles still checked at every start) is kept.
    if (Object.keys(manifest).length > 0) {
      writeFileSync(join(work, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
      renameSync(join(work, 'manifest.json'), join(outDir, 'manifest.json'));
    }
    return manifest;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = resolve(process.argv[2] ?? join(ROOT, 'node_modules', '.cache', 'orch-deps'));
  try {
    const manifest = await bundleDeps(out);
    console.error(`bundle-deps: ${Object.keys(manifest).join(', ') || 'nothing'} bundled in ${out}`);
  } catch (error) {
    // rolldown missing (an install without dev dependencies) or anything else: orch works without.
    console.error(`bundle-deps: no bundles made (orch loads its dependencies as usual): ${String(error)}`);
  }
}
