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
 *   is never shadowed by an older bundle);
 * - the import is orch's own (a dependency importing one of them gets its own resolution);
 * - `ORCH_BUNDLED_DEPS` is not `0`.
 */
import module from 'node:module';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BundleManifest {
  /** `bytes`: the bundle's size as written, so a cut-short or replaced file is not used. */
  [name: string]: { file: string; version: string; specifiers: string[]; bytes: number };
}

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

/** The size of a regular file, or null. */
function sizeOf(file: URL): number | null {
  try {
    const st = statSync(file);
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}

/**
 * Bundles usable now, by specifier: the first manifest found, its entries whose package has the
 * version installed.
 */
export function usableBundles(
  places: readonly URL[] = PLACES,
  resolve: (specifier: string) => string = import.meta.resolve,
): Map<string, string> {
  for (const place of places) {
    let manifest: BundleManifest;
    try {
      manifest = JSON.parse(readFileSync(new URL('manifest.json', place), 'utf8')) as BundleManifest;
    } catch {
      continue;
    }
    const bySpecifier = new Map<string, string>();
    for (const [name, entry] of Object.entries(manifest)) {
      if (!entry || typeof entry.file !== 'string' || !Array.isArray(entry.specifiers)) continue;
      if (installedVersion(name, resolve) !== entry.version) continue;
      const file = new URL(entry.file, place);
      // A bundle named by the manifest but gone, cut short or not a file: the package's modules again.
      if (!file.href.startsWith(place.href) || sizeOf(file) !== entry.bytes) continue;
      const url = file.href;
      for (const spec of entry.specifiers) bySpecifier.set(spec, url);
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
