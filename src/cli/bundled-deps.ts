/**
 * Loads the dependencies every command needs (kysely, zod, yaml) from one file each, made by
 * `scripts/bundle-deps.ts`, instead of module by module: a command starts in about half the time.
 *
 * A resolve hook (`module.registerHooks`, Node 22.15 and later) answers orch's own imports of
 * those packages with their bundles. It is used only when all of this holds, and otherwise the
 * packages load as usual (slower, nothing else changes):
 * - a manifest is found: the package's `dist/deps` beside `dist/cli`, or a checkout's
 *   `node_modules/.cache/orch-deps` (made by `npm ci` through the `prepare` script);
 * - the installed package has the version its bundle was made from (a dependency upgraded since
 *   is never shadowed by an older bundle), and the file is the one written (its SHA-256);
 * - the import is orch's own, of one of those packages (a dependency importing one of them gets
 *   its own resolution);
 * - `ORCH_BUNDLED_DEPS` is not `0`.
 */
import module from 'node:module';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The packages orch bundles, with the specifiers orch imports each by: the hook answers these
 * and nothing else, whatever a manifest says.
 */
export const BUNDLED: Readonly<Record<string, readonly string[]>> = {
  kysely: ['kysely', 'kysely/migration'],
  zod: ['zod'],
  yaml: ['yaml'],
};

/**
 * `manifest.json`, by package: its bundle's file (always `<name>-<version>.mjs`), the version it
 * was made from, and the SHA-256 of the file as written (a file changed since, cut short,
 * overwritten or swapped for another package's, is not used).
 */
export type BundleManifest = Record<string, { file: string; version: string; sha256: string }>;

export const bundleFile = (name: string, version: string): string => `${name}-${version}.mjs`;

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** orch's own root: its imports, not a dependency's, are answered from the bundles. */
const ROOT = new URL('../../', import.meta.url).href;
const OWN_DEPENDENCIES = new URL('node_modules/', ROOT).href;

/** Where a manifest may be, in order. */
const PLACES = [new URL('../deps/', import.meta.url), new URL('node_modules/.cache/orch-deps/', ROOT)];

/** The installed version of `name`: the package.json found upward from its resolved entry. */
export function installedVersion(name: string, resolve: (specifier: string) => string): string | null {
  try {
    let dir = dirname(fileURLToPath(resolve(name)));
    for (;;) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
          name?: unknown;
          version?: unknown;
        };
        if (pkg.name === name && typeof pkg.version === 'string') return pkg.version;
      } catch {
        /* no package.json here, or not readable: look further up */
      }
      const up = dirname(dir);
      if (up === dir) return null;
      dir = up;
    }
  } catch {
    return null;
  }
}

/** The SHA-256 of a regular file (never a FIFO, which would block the read), or null. */
function hashOf(file: URL): string | null {
  try {
    return statSync(file).isFile() ? sha256(readFileSync(file)) : null;
  } catch {
    return null;
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Bundles usable now, by specifier: from the first manifest found, each known package's bundle
 * whose version is the one installed and whose file is as it was written.
 */
export function usableBundles(
  places: readonly URL[] = PLACES,
  resolve: (specifier: string) => string = import.meta.resolve,
): Map<string, string> {
  for (const place of places) {
    let manifest: unknown;
    try {
      manifest = JSON.parse(readFileSync(new URL('manifest.json', place), 'utf8'));
    } catch {
      continue;
    }
    const bySpecifier = new Map<string, string>();
    if (!isRecord(manifest)) return bySpecifier;
    for (const [name, specifiers] of Object.entries(BUNDLED)) {
      const entry = manifest[name];
      if (!isRecord(entry)) continue;
      const version = installedVersion(name, resolve);
      if (version === null || entry.version !== version || entry.file !== bundleFile(name, version)) continue;
      const file = new URL(bundleFile(name, version), place);
      if (typeof entry.sha256 !== 'string' || hashOf(file) !== entry.sha256) continue;
      for (const spec of specifiers) bySpecifier.set(spec, file.href);
    }
    return bySpecifier;
  }
  return new Map();
}

/** Registers the hook when bundles are usable; returns the specifiers it answers. */
export function useBundledDeps(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.ORCH_BUNDLED_DEPS === '0' || typeof module.registerHooks !== 'function') return [];
  const bundles = usableBundles();
  if (bundles.size === 0) return [];
  module.registerHooks({
    resolve(specifier, context, next) {
      const url = bundles.get(specifier);
      const parent = context.parentURL ?? '';
      if (url && parent.startsWith(ROOT) && !parent.startsWith(OWN_DEPENDENCIES))
        return { url, format: 'module', shortCircuit: true };
      return next(specifier, context);
    },
  });
  return [...bundles.keys()];
}
