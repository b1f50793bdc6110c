#!/usr/bin/env node
/**
 * orch's command line. The commands (program.ts) load after the hook that gives them their
 * dependencies from one file each (bundled-deps.ts): an import here would resolve them before it.
 */
import { useBundledDeps } from './bundled-deps.ts';

useBundledDeps();
await import('./program.ts');
