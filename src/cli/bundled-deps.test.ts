import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { bundleFile, installedVersion, sha256, usableBundles } from './bundled-deps.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A folder with a manifest, as scripts/bundle-deps.ts writes it. */
function place(manifest: unknown): URL {
  const dir = mkdtempSync(join(tmpdir(), 'orch-bundles-'));
  dirs.push(dir);
  writeFileSync(
    join(dir, 'manifest.json'),
    typeof manifest === 'string' ? manifest : JSON.stringify(manifest),
  );
  return pathToFileURL(`${dir}/`);
}

const kysely = installedVersion('kysely', import.meta.resolve)!;
const zod = installedVersion('zod', import.meta.resolve)!;
const CODE = Buffer.from('export {};\n');
/** A manifest entry for `name` at `version`, its file holding CODE. */
const entry = (name: string, version: string, code = CODE) => ({
  file: bundleFile(name, version),
  version,
  sha256: sha256(code),
});

describe('bundled dependencies', () => {
  it('reads the installed version of a package from its package.json', () => {
    expect(kysely).toMatch(/^\d+\.\d+\.\d+/);
    expect(installedVersion('no-such-package-here', import.meta.resolve)).toBeNull();
  });

  it("answers a known package's specifiers from its bundle, and skips one made from another version", () => {
    const here = place({ kysely: entry('kysely', kysely), zod: entry('zod', '0.0.1') });
    writeFileSync(new URL(bundleFile('kysely', kysely), here), CODE);
    writeFileSync(new URL(bundleFile('zod', '0.0.1'), here), CODE);
    const found = usableBundles([here]);
    expect([...found.keys()].sort()).toEqual(['kysely', 'kysely/migration']);
    expect(found.get('kysely')).toBe(new URL(bundleFile('kysely', kysely), here).href);
  });

  it('takes the first place that has a manifest, and nothing from a broken, null or odd one', () => {
    const missing = pathToFileURL(join(tmpdir(), 'orch-no-bundles-here/'));
    const good = place({ zod: entry('zod', zod) });
    writeFileSync(new URL(bundleFile('zod', zod), good), CODE);
    expect([...usableBundles([missing, good]).keys()]).toEqual(['zod']);
    // A manifest that is no JSON is skipped like a missing one.
    expect([...usableBundles([place('{ not json'), good]).keys()]).toEqual(['zod']);
    for (const odd of ['null', '[]', '"zod"', '7', { zod: null }, { zod: 'zod' }, { zod: [] }])
      expect(usableBundles([place(odd)]).size).toBe(0);
    expect(usableBundles([missing]).size).toBe(0);
  });

  it('answers only the known specifiers of each package, whatever the manifest names', () => {
    const here = place({
      zod: { ...entry('zod', zod), specifiers: ['zod', 'node:fs', 'commander'] },
      commander: entry('commander', '14.0.0'),
    });
    writeFileSync(new URL(bundleFile('zod', zod), here), CODE);
    writeFileSync(new URL(bundleFile('commander', '14.0.0'), here), CODE);
    expect([...usableBundles([here]).keys()]).toEqual(['zod']);
  });

  it("skips a bundle whose file is gone, changed, another package's, not a file, or named otherwise", () => {
    const file = bundleFile('zod', zod);
    const here = place({ zod: entry('zod', zod) });
    expect(usableBundles([here]).size).toBe(0);
    writeFileSync(new URL(file, here), 'export {}');
    expect(usableBundles([here]).size).toBe(0);
    // Same size, other bytes.
    writeFileSync(new URL(file, here), 'throw 1;;;\n');
    expect(usableBundles([here]).size).toBe(0);
    writeFileSync(new URL(file, here), CODE);
    expect(usableBundles([here]).size).toBe(1);

    // kysely's bundle named as zod's, with kysely's hash: the file name must be zod's own.
    const swapped = place({ zod: { ...entry('zod', zod), file: bundleFile('kysely', kysely) } });
    writeFileSync(new URL(bundleFile('kysely', kysely), swapped), CODE);
    expect(usableBundles([swapped]).size).toBe(0);

    const folder = place({ zod: entry('zod', zod) });
    mkdirSync(new URL(file, folder));
    expect(usableBundles([folder]).size).toBe(0);
    const outside = place({ zod: { ...entry('zod', zod), file: `../${file}` } });
    expect(usableBundles([outside]).size).toBe(0);
  });
});
