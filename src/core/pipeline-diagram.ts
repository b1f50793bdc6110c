/**
 * The pipeline's state diagram, drawn from a plan: every transition the
 * decision function (pipeline.ts) can make between stages, as Mermaid
 * (`stateDiagram-v2`). `orch config diagram` prints it for a project;
 * docs/architecture.md holds the default pipeline's. Pure.
 */
import { nextStage, type Plan } from './pipeline.ts';

const id = (stage: string): string => stage.replace(/-/g, '_');

/** The Mermaid text of the plan's state diagram. */
export function stateDiagram(plan: Plan): string {
  const lines = ['stateDiagram-v2', '  direction LR'];
  const edge = (from: string, to: string, label: string) =>
    lines.push(`  ${from === '[*]' ? from : id(from)} --> ${to === '[*]' ? to : id(to)}: ${label}`);
  for (const s of plan.stages) if (s.name.includes('-')) lines.push(`  state "${s.name}" as ${id(s.name)}`);
  lines.push('  state "landing" as landing');
  edge('[*]', 'created', 'task added');
  edge('created', nextStage(plan, 'created'), 'worktree made');
  for (const s of plan.stages) {
    const next = nextStage(plan, s.name);
    const pass =
      s.name === 'review'
        ? 'approved, gates pass'
        : s.kind === 'human'
          ? 'approved by a person'
          : 'gates pass';
    edge(s.name, next === 'done' ? 'landing' : next, pass);
    if (s.approval && s.kind !== 'human') edge(s.name, s.name, 'waits for approval');
    if (s.name === 'review') edge('review', 'development', 'rejected (attempt recorded)');
    if (s.onFail === 'escalate')
      edge(s.name, 'escalated', s.name === 'architecture' ? 'gate fails (design_rejected)' : 'gate fails');
    else if (s.onFail === 'development')
      edge(
        s.name,
        'development',
        s.name === 'development' ? 'gate fails (attempt recorded)' : 'gate fails (late failure)',
      );
    else edge(s.name, s.onFail, `gate fails (loop, at most ${plan.maxLoops}×)`);
  }
  edge('landing', 'done', 'merged');
  edge('landing', 'landing', 'CI or review pending (polls)');
  edge('landing', 'development', 'conflict, red CI, changes requested');
  lines.push(
    '  note right of escalated',
    `    also from any stage: retries (${plan.retry.maxRetries}) or interruptions (${plan.maxInterruptions})`,
    '    used up, attempts or budget spent, no progress, oscillation',
    '  end note',
  );
  edge('done', '[*]', '');
  edge('escalated', '[*]', 'a person decides (orch task retry)');
  lines.push('  note left of created', '    cancel: from any stage to cancelled, final', '  end note');
  return `${lines.join('\n').replace(/: $/gm, '')}\n`;
}
