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

/** The first manifest found (parsed, whatever its shape), with the folder it is in. */
function findManifest(places: readonly URL[]): { place: URL; manifest: unknown } | null {
  for (const place of places) {
    try {
      return { place, manifest: JSON.parse(readFileSync(new URL('manifest.json', place), 'utf8')) };
    } catch {
      /* none here, or not JSON: the next place */
    }
  }
  return null;
}

/** The bundle of a known package, when its version is the one installed and its file as written. */
function usableBundle(
  name: string,
  place: URL,
  manifest: unknown,
  resolve: (specifier: string) => string,
): string | null {
  const entry = isRecord(manifest) ? manifest[name] : undefined;
  if (!isRecord(entry)) return null;
  const version = installedVersion(name, resolve);
  if (version === null || entry.version !== version || entry.file !== bundleFile(name, version)) return null;
  const file = new URL(bundleFile(name, version), place);
  if (typeof entry.sha256 !== 'string' || hashOf(file) !== entry.sha256) return null;
  return file.href;
}

/**
 * Bundles usable now, by specifier: from the first manifest found, each known package's bundle
 * whose version is the one installed and whose file is as it was written.
 */
export function usableBundles(
  places: readonly URL[] = PLACES,
  resolve: (specifier: string) => string = import.meta.resolve,
): Map<string, string> {
  const bySpecifier = new Map<string, string>();
  const found = findManifest(places);
  if (!found) return bySpecifier;
  for (const [name, specifiers] of Object.entries(BUNDLED)) {
    const url = usableBundle(name, found.place, found.manifest, resolve);
    if (url) for (const spec of specifiers) bySpecifier.set(spec, url);
  }
  return bySpecifier;
}

/** Each known specifier's package. */
const PACKAGE_OF = new Map(
  Object.entries(BUNDLED).flatMap(([name, specifiers]) => specifiers.map((s) => [s, name] as const)),
);

/**
 * Registers the hook when a manifest is found; returns whether it did. Each package's bundle is
 * checked (version, SHA-256) the first time orch imports the package, and only then: a process
 * that never imports kysely (the scripted agent) never reads its bundle.
 */
export function useBundledDeps(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.ORCH_BUNDLED_DEPS === '0' || typeof module.registerHooks !== 'function') return false;
  const found = findManifest(PLACES);
  if (!found || !isRecord(found.manifest)) return false;
  const { place, manifest } = found;
  const checked = new Map<string, string | null>();
  module.registerHooks({
    resolve(specifier, context, next) {
      const name = PACKAGE_OF.get(specifier);
      const parent = context.parentURL ?? '';
      if (name && parent.startsWith(ROOT) && !parent.startsWith(OWN_DEPENDENCIES)) {
        if (!checked.has(name)) {
          // Marked first: the check resolves the package itself (its version), which comes back
          // through this hook and must get the package's own resolution.
          checked.set(name, null);
          checked.set(name, usableBundle(name, place, manifest, import.meta.resolve));
        }
        const url = checked.get(name);
        if (url) return { url, format: 'module', shortCircuit: true };
      }
      return next(specifier, context);
    },
  });
  return true;
}
