/**
 * The chaos workload: tasks worked by the scripted agent, a fixed mix of
 * kinds so that both ends of the pipeline show up under every fault. A
 * task's kind is in its title (the script matches title substrings), so the
 * outcome each task should reach without any fault is known in advance.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type TaskKind = 'clean' | 'oscillating' | 'stuck' | 'broken';

/** Task n (from 1, across the whole run) gets kind `MIX[(n - 1) % MIX.length]`. */
const MIX: readonly TaskKind[] = ['clean', 'oscillating', 'clean', 'stuck', 'clean', 'broken'];

export const kindOf = (n: number): TaskKind => MIX[(n - 1) % MIX.length]!;

export const titleOf = (n: number): string => `chaos task ${n} ${kindOf(n)}`;

/**
 * Whether task n is filed as an issue on the world's fake tracker and imported from it (only
 * imported tasks are written back to the tracker), rather than added straight into the store.
 * Three in four: every kind is imported in some wave and left out in another.
 */
export const fromTracker = (n: number): boolean => n % 4 !== 0;

export function kindOfTitle(title: string): TaskKind {
  const kind = MIX.find((k) => title.endsWith(` ${k}`));
  if (!kind) throw new Error(`not a chaos task title: ${title}`);
  return kind;
}

/** Where each kind ends without faults: `done`, or escalated with this terminal reason. */
export const EXPECTED: Readonly<Record<TaskKind, 'done' | string>> = {
  clean: 'done',
  // Diffs A, B, A, each rejected.
  oscillating: 'oscillation_detected',
  // The same diff rejected twice.
  stuck: 'no_progress',
  // The tester exits 1 on every try: retried, then escalated.
  broken: 'agent_failure',
};

const result = (text: string) => ({ result: text });
const writeImpl = (content: string) => ({ write: { path: 'impl/{{key}}.txt', content } });
const reject = { verdict: 'rejected', comments: 'Not right yet.' };

/** Node's compile cache makes each scripted agent start about twice as fast. */
export const NODE_CACHE = join(tmpdir(), 'orch-test-node-compile-cache');

/** The scripted agent's script for every kind. */
export function chaosScript(): Record<string, unknown> {
  return {
    tasks: [
      {
        match: { title: ' oscillating' },
        roles: {
          developer: {
            attempts: {
              1: [writeImpl('A\n'), result('wrote A')],
              2: [writeImpl('B\n'), result('wrote B')],
              3: [writeImpl('A\n'), result('wrote A again')],
            },
            default: [writeImpl('C\n'), result('wrote C')],
          },
          reviewer: { default: [reject] },
        },
      },
      {
        match: { title: ' stuck' },
        roles: {
          developer: { default: [writeImpl('same\n'), result('wrote the same thing')] },
          reviewer: { default: [reject] },
        },
      },
      {
        match: { title: ' broken' },
        roles: { tester: { default: [{ message: 'the test runner cannot start' }, { exit: 1 }] } },
      },
    ],
    defaults: {
      // A developer that takes a moment, so kills often land while an agent is at work.
      developer: [
        { sleep_ms: 150 },
        {
          append: {
            path: 'changes/{{key}}.md',
            content: '- attempt {{attempt}}: chaos change for {{key}} ({{title}})\n',
          },
        },
        result('Attempt {{attempt}} for {{key}}: recorded the change.'),
      ],
    },
  };
}

/** orch.yaml for a chaos project; `script` is the script's path relative to the project root. */
export function chaosConfig(script: string): Record<string, unknown> {
  return {
    agents: { default: { adapter: 'scripted', script, env: { NODE_COMPILE_CACHE: NODE_CACHE } } },
    retry: { max_retries: 3, base_ms: 100, max_ms: 1000 },
    budget: { max_attempts: 5 },
  };
}
