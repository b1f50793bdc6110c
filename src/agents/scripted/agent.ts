/**
 * The scripted agent's entry (the agent itself: agent-main.ts). It loads zod and yaml from their
 * bundles when there are (src/cli/bundled-deps.ts), as the CLI does: the agent is started for
 * every stage of every demo and test task, and those two packages were most of its start.
 */
import { useBundledDeps } from '../../cli/bundled-deps.ts';

useBundledDeps();
await import('./agent-main.ts');
