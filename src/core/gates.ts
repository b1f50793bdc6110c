/**
 * The quality-gate registry: named deterministic checks a task must pass to
 * leave a stage. The names are stable; their execution lives in the runtime.
 */
export const QG_CHECKS = {
  check_ci_green: "the project's test command passes in the worktree",
  check_reviewer_verdict: 'the last review approved the build',
  check_artifacts_present: 'the stage produced the files it must',
  check_diff_nonempty: 'the branch changes something against the base',
  check_merge_clean: 'the branch merges onto the current base without conflict',
  check_human_approval: 'a human approved with `orch task approve`',
} as const;
export type GateName = keyof typeof QG_CHECKS;

/** Files `check_artifacts_present` expects of a stage when the config names none. */
export const DEFAULT_ARTIFACTS: Readonly<Record<string, readonly string[]>> = {
  analysis: ['docs/tasks/{{ task.key }}/requirements.md', 'docs/tasks/{{ task.key }}/test-plan.md'],
  architecture: ['docs/tasks/{{ task.key }}/adr.md'],
};

/** Keeps the end of a long output, where test runners put their verdict. */
export function tail(text: string, maxChars = 4000): string {
  return text.length <= maxChars ? text : `…${text.slice(-maxChars)}`;
}
