/**
 * Where a CLI adapter's executable is: the role's `binary` (a path, or a name
 * looked up on PATH), else the adapter's binary name on PATH, else orch's own
 * `node_modules/.bin` (the CLIs orch is tested with are dev dependencies).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentConfig } from '../config/project-config.ts';
import type { AgentAdapter } from './adapter.ts';

/** orch's `node_modules/.bin`. */
export const ORCH_BIN_DIR = fileURLToPath(new URL('../../node_modules/.bin', import.meta.url));

export interface ResolvedBinary {
  /** What argv[0] will be: an absolute path when found, else the name as configured. */
  path: string;
  found: boolean;
  /** `config`: the role's `binary`; `path`: found on PATH; `orch`: orch's node_modules/.bin. */
  source: 'config' | 'path' | 'orch';
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** An executable on `pathVar`, or null. */
export function onPath(name: string, pathVar: string | undefined): string | null {
  for (const dir of (pathVar ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    if (executable(candidate)) return candidate;
  }
  return null;
}

/** Resolves a CLI adapter's executable; null for adapters whose argv comes from elsewhere. */
export function resolveAgentBinary(
  adapter: Pick<AgentAdapter, 'binaryName'>,
  cfg: Pick<AgentConfig, 'binary'>,
  where: { pathVar: string | undefined; projectRoot: string; orchBinDir?: string },
): ResolvedBinary | null {
  if (cfg.binary) {
    if (cfg.binary.includes('/')) {
      const path = isAbsolute(cfg.binary) ? cfg.binary : resolve(where.projectRoot, cfg.binary);
      return { path, found: executable(path), source: 'config' };
    }
    const found = onPath(cfg.binary, where.pathVar);
    return { path: found ?? cfg.binary, found: found !== null, source: 'config' };
  }
  if (!adapter.binaryName) return null;
  const fromPath = onPath(adapter.binaryName, where.pathVar);
  if (fromPath) return { path: fromPath, found: true, source: 'path' };
  const binDir = where.orchBinDir ?? ORCH_BIN_DIR;
  const bundled = join(binDir, adapter.binaryName);
  if (executable(bundled)) return { path: bundled, found: true, source: 'orch' };
  // A CLI shipped as one package per platform (e.g. `opencode-linux-x64`) has no `.bin` link.
  const platformPackage = join(
    binDir,
    '..',
    `${adapter.binaryName}-${PLATFORM}-${process.arch}`,
    'bin',
    adapter.binaryName,
  );
  if (executable(platformPackage)) return { path: platformPackage, found: true, source: 'orch' };
  return { path: adapter.binaryName, found: false, source: 'path' };
}

/** Platform names as per-platform npm packages spell them. */
const PLATFORM = process.platform === 'win32' ? 'windows' : process.platform;
