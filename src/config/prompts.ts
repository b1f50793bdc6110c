/**
 * Prompts per role: Liquid templates in strict mode, so an unknown variable
 * or filter is an error, never an empty string in front of an agent.
 */
import { Liquid } from 'liquidjs';
import type { Role } from '../core/stages.ts';

export interface PromptVars {
  task: { key: string; title: string; description: string };
  stage: string;
  role: string;
  attempt: number;
  feedback: string;
  artifacts_dir: string;
  test_command: string;
}

const COMMON = `You are the {{ role }} of an autonomous delivery pipeline, working on task {{ task.key }}: {{ task.title }}.
{% if task.description != "" %}
## Task description

{{ task.description }}
{% endif %}
You work in a git worktree of the task's branch. Commit nothing yourself: orch commits your changes when you finish.
`;

const ROLE_PROMPTS: Record<Role, string> = {
  analyst: `${COMMON}
## Your job: analysis (stage {{ stage }})

Write the requirements to docs/tasks/{{ task.key }}/requirements.md and a test plan to docs/tasks/{{ task.key }}/test-plan.md.
`,
  architect: `${COMMON}
## Your job: architecture (stage {{ stage }})

Read docs/tasks/{{ task.key }}/requirements.md and write the design decision record to docs/tasks/{{ task.key }}/adr.md.
`,
  developer: `${COMMON}
## Your job: development, attempt {{ attempt }}

Implement the task following docs/tasks/{{ task.key }}/ and make the tests pass{% if test_command != "" %} (\`{{ test_command }}\`){% endif %}.
{% if feedback != "" %}
## Feedback from the last review — address every point

{{ feedback }}
{% endif %}`,
  reviewer: `${COMMON}
## Your job: review of attempt {{ attempt }}

Review the change on this branch against the base branch and the task's requirements.
End your answer with a JSON object in a fenced block:

\`\`\`json
{"verdict": "approved" or "rejected", "comments": "what must change, if rejected"}
\`\`\`
`,
  tester: `${COMMON}
## Your job: testing (stage {{ stage }})

Run the project's tests{% if test_command != "" %} (\`{{ test_command }}\`){% endif %} and report the outcome.
`,
  deployer: `${COMMON}
## Your job: {{ stage }}

Prepare and report the deployment of this change.
`,
};

// Templates come from orch.yaml and are rendered when it loads: bound them, or
// `{% for i in (1..1000000000) %}` stalls every load (liquidjs checks these limits as it goes).
const engine = new Liquid({
  strictVariables: true,
  strictFilters: true,
  ownPropertyOnly: true,
  /** Characters of template parsed at most. */
  parseLimit: 1_000_000,
  /** Rendering time at most, ms; a real prompt renders in well under one. */
  renderLimit: 2_000,
  /** Range items and filter-built characters at most. */
  memoryLimit: 10_000_000,
});

/** A parsed template. */
export type CompiledPrompt = ReturnType<Liquid['parse']>;

/** A stage's prompt template, read and parsed when the config loaded. */
export interface PromptTemplate {
  /** The template's text. */
  source: string;
  /** Where it came from: `pipeline.<stage>.prompt`, or the prompt file's path. */
  origin: string;
  /** Parsed once (strict Liquid); rendered for each run. */
  parsed: CompiledPrompt;
}

/** Parses a template now, so errors surface at load time with the template named. */
export function compilePrompt(source: string): CompiledPrompt {
  return engine.parse(source);
}

const builtIn = new Map<Role, CompiledPrompt>();

/**
 * The prompt of a run: the role's built-in template, or the stage's own (`override`): its text, or
 * better the template parsed when the config loaded (config/config-files.ts `PromptTemplate`).
 */
export function renderPrompt(
  role: Role,
  vars: PromptVars,
  override?: string | { parsed: CompiledPrompt },
): string {
  let template =
    override === undefined
      ? builtIn.get(role)
      : typeof override === 'string'
        ? compilePrompt(override)
        : override.parsed;
  if (!template) {
    template = compilePrompt(ROLE_PROMPTS[role]);
    builtIn.set(role, template);
  }
  return engine.renderSync(template, vars as unknown as Record<string, unknown>);
}

const SAMPLE_VARS: PromptVars = {
  task: { key: 'KEY-1', title: 'title', description: 'description' },
  stage: 'development',
  role: 'developer',
  attempt: 1,
  feedback: 'feedback',
  artifacts_dir: '/artifacts',
  test_command: 'npm test',
};

/** Parses and renders a template against every variable a prompt has: unknown variables and filters are errors now, not at run time. */
export function checkPromptTemplate(source: string): string | null {
  try {
    engine.renderSync(compilePrompt(source), SAMPLE_VARS as unknown as Record<string, unknown>);
    return null;
  } catch (error) {
    return `invalid prompt template: ${(error as Error).message.split('\n')[0]}`;
  }
}

/** Renders a path template such as `docs/tasks/{{ task.key }}/adr.md`. */
export function renderPath(template: string, vars: PromptVars): string {
  return engine.parseAndRenderSync(template, vars as unknown as Record<string, unknown>);
}

/** A person's message as a prompt shows it. */
export interface PromptMessage {
  text: string;
  by: string;
  created_at: string;
}

/**
 * The section a run's prompt ends with when a person wrote to the task (`orch task say`) since
 * the last run: after the stage's instructions, each message with its time and author, its lines
 * quoted so it cannot pass for orch's own instructions. Empty when there is none.
 */
export function messagesSection(messages: readonly PromptMessage[]): string {
  if (messages.length === 0) return '';
  return `\n## Messages from a person\n\nA person following this task wrote to you since the last run. Take what they say into account in this run; the instructions above still hold.\n\n${quoteMessages(messages)}\n`;
}

/**
 * The whole prompt of a run that resumes the CLI session of a run a person stopped to write to
 * it (`orch task say --now`): the session holds the instructions already, so only their messages,
 * quoted the same way and marked as theirs.
 */
export function resumedSessionPrompt(messages: readonly PromptMessage[]): string {
  const intro =
    'orch stopped your run because a person following this task wrote to you. Your instructions still hold: take what they say into account and carry on with the task from where you were.';
  return messages.length
    ? `## Messages from a person\n\n${intro}\n\n${quoteMessages(messages)}\n`
    : `## Carry on\n\norch stopped your run. Your instructions still hold: carry on with the task from where you were.\n`;
}

/** Each message under its time and author, its lines quoted so it cannot pass for orch's own instructions. */
function quoteMessages(messages: readonly PromptMessage[]): string {
  return messages
    .map(
      (m) =>
        `### ${m.created_at}, from ${m.by}\n\n${m.text
          .replace(/\r\n?/g, '\n')
          .split('\n')
          .map((line) => (line ? `> ${line}` : '>'))
          .join('\n')}`,
    )
    .join('\n\n');
}
