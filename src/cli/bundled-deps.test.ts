import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { installedVersion, usableBundles } from './bundled-deps.ts';

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

describe('bundled dependencies', () => {
  it('reads the installed version of a package from its package.json', () => {
    expect(kysely).toMatch(/^\d+\.\d+\.\d+/);
    expect(installedVersion('no-such-package-here', import.meta.resolve)).toBeNull();
  });

  it('answers each specifier of a bundle whose version is installed, and skips one made from another version', () => {
    const here = place({
      kysely: {
        file: `kysely-${kysely}.mjs`,
        version: kysely,
        specifiers: ['kysely', 'kysely/migration'],
        bytes: 11,
      },
      zod: { file: 'zod-0.0.1.mjs', version: '0.0.1', specifiers: ['zod'], bytes: 11 },
    });
    writeFileSync(new URL(`kysely-${kysely}.mjs`, here), 'export {};\n');
    const found = usableBundles([here]);
    expect([...found.keys()].sort()).toEqual(['kysely', 'kysely/migration']);
    expect(found.get('kysely')).toBe(new URL(`kysely-${kysely}.mjs`, here).href);
  });

  it('takes the first place that has a manifest, and none from a broken or missing one', () => {
    const missing = pathToFileURL(join(tmpdir(), 'orch-no-bundles-here/'));
    const broken = place('{ not json');
    const good = place({ zod: { file: 'z.mjs', version: zod, specifiers: ['zod'], bytes: 11 } });
    writeFileSync(new URL('z.mjs', good), 'export {};\n');
    expect([...usableBundles([missing, good]).keys()]).toEqual(['zod']);
    // A broken manifest is skipped like a missing one; entries of the wrong shape are ignored.
    expect([...usableBundles([broken, good]).keys()]).toEqual(['zod']);
    const odd = place({ zod: { file: 3, version: zod }, kysely: null });
    expect(usableBundles([odd]).size).toBe(0);
    expect(usableBundles([missing]).size).toBe(0);
  });

  it('skips a bundle whose file is gone, cut short, not a file, or named outside its folder', () => {
    const entry = { file: 'z.mjs', version: zod, specifiers: ['zod'], bytes: 11 };
    const gone = place({ zod: entry });
    expect(usableBundles([gone]).size).toBe(0);
    writeFileSync(new URL('z.mjs', gone), 'export {}');
    expect(usableBundles([gone]).size).toBe(0);
    writeFileSync(new URL('z.mjs', gone), 'export {};\n');
    expect(usableBundles([gone]).size).toBe(1);
    const folder = place({ zod: { ...entry, file: 'sub' } });
    mkdirSync(new URL('sub', folder));
    expect(usableBundles([folder]).size).toBe(0);
    const outside = place({ zod: { ...entry, file: '../../etc/passwd' } });
    expect(usableBundles([outside]).size).toBe(0);
  });
});
