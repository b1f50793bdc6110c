/** `orch init` and `orch project add`: make a repository an orch project. */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { currentBranch, git, isGitRepo, repoRoot } from '../../runtime/git.ts';
import { openContext, type OrchContext } from '../../runtime/context.ts';
import { loadProjectConfig } from '../../config/project-config.ts';
import type { Env } from '../../config/settings.ts';
import type { Project } from '../../store/schema.ts';
import { OrchError } from '../../errors.ts';
import { originUrl } from '../../runtime/project-clone.ts';
import {
  AGENT_CLIS,
  adapterOf,
  chooseAgent,
  choiceText,
  noneFoundText,
  type AgentChoice,
} from './init-agent.ts';

/** The test command a repository's files suggest, or null. */
export function detectTestCommand(root: string): string[] | null {
  const pkg = join(root, 'package.json');
  if (existsSync(pkg)) {
    try {
      const scripts = (JSON.parse(readFileSync(pkg, 'utf8')) as { scripts?: Record<string, string> }).scripts;
      if (scripts?.test && !scripts.test.includes('no test specified')) return ['npm', 'test'];
    } catch {
      /* not JSON: fall through */
    }
  }
  if (existsSync(join(root, 'Cargo.toml'))) return ['cargo', 'test'];
  if (existsSync(join(root, 'go.mod'))) return ['go', 'test', './...'];
  if (existsSync(join(root, 'pyproject.toml')) || existsSync(join(root, 'pytest.ini')))
    return ['python3', '-m', 'pytest', '-q'];
  if (existsSync(join(root, 'Makefile')) && /^test:/m.test(readFileSync(join(root, 'Makefile'), 'utf8')))
    return ['make', 'test'];
  return null;
}

export const keyPrefixFor = (name: string): string => {
  const letters = name.toUpperCase().replace(/[^A-Z0-9]/g, '');
  const prefix = letters.replace(/^[0-9]+/, '').slice(0, 6);
  return prefix || 'TASK';
};

const yamlList = (argv: string[]): string => `[${argv.map((a) => JSON.stringify(a)).join(', ')}]`;

export function defaultConfigText(opts: {
  name: string;
  keyPrefix: string;
  baseBranch: string;
  testCommand: string[] | null;
  /** `scripted`, or one of {@link AGENT_CLIS}. */
  agent: string;
}): string {
  const cli = AGENT_CLIS.find((c) => c.adapter === opts.agent);
  const agent = cli
    ? `  default:\n    adapter: ${cli.adapter}  # ${cli.label}; see docs/agents.md\n${cli.config.map((l) => `    ${l}\n`).join('')}`
    : `  default:\n    adapter: scripted  # orch's built-in demo agent: canned changes, not real work\n`;
  return `# orch pipeline configuration — see docs/configuration.md
project:
  name: ${opts.name}
  key_prefix: ${opts.keyPrefix}
  base_branch: ${opts.baseBranch}
${opts.testCommand ? `  test_command: ${yamlList(opts.testCommand)}\n` : ''}
agents:
${agent}
budget:
  max_attempts: 5
`;
}

/** Marks `.orch/` as ignored without touching tracked files. */
async function excludeStateDir(root: string): Promise<void> {
  const gitDir = (await git(root, ['rev-parse', '--git-common-dir'])).trim();
  const exclude = join(resolve(root, gitDir), 'info', 'exclude');
  mkdirSync(join(resolve(root, gitDir), 'info'), { recursive: true });
  const current = existsSync(exclude) ? readFileSync(exclude, 'utf8') : '';
  if (!current.split('\n').includes('/.orch/'))
    appendFileSync(exclude, `${current.endsWith('\n') || !current ? '' : '\n'}/.orch/\n`);
}

/**
 * The root of the git repository at `dir`, checked for what a project needs (a repository, and a
 * commit for tasks to branch from), before anything is written.
 */
export async function projectRoot(dir: string): Promise<string> {
  if (!existsSync(dir) || !(await isGitRepo(dir, true))) {
    throw new OrchError(
      'not_a_git_repo',
      `${dir} is not a git repository (orch works on git repositories: run \`git init\` first)`,
    );
  }
  const root = await repoRoot(dir);
  const hasCommit = (await git(root, ['rev-list', '-n', '1', '--all'])).trim() !== '';
  if (!hasCommit)
    throw new OrchError(
      'invalid_state',
      `${root} has no commit yet: commit something first, so tasks can branch from ${await currentBranch(root)}`,
    );
  return root;
}

/** Registers the repository at `dir` as a project in the context's store. */
export async function registerProject(
  ctx: OrchContext,
  dir: string,
  nameOverride?: string,
): Promise<Project> {
  const root = await projectRoot(dir);
  const cfg = loadProjectConfig(join(root, 'orch.yaml'));
  const name = nameOverride ?? cfg.project.name ?? basename(root);
  const baseBranch = cfg.project.base_branch ?? (await currentBranch(root));
  await excludeStateDir(root);
  return ctx.store.upsertProject({
    name,
    rootPath: root,
    baseBranch,
    keyPrefix: cfg.project.key_prefix ?? keyPrefixFor(name),
    // Workers on other machines clone the project from here (docs/architecture.md, scale-out).
    remoteUrl: await originUrl(root),
  });
}

/** What `orch init` did. */
export interface InitResult {
  project: Project;
  configPath: string;
  /** Whether orch.yaml was written (false: an existing one was kept, agents and all). */
  created: boolean;
  /** The agent written into a new orch.yaml, and why; null when orch.yaml was kept. */
  agent: AgentChoice | null;
}

/**
 * Makes the repository at `cwd` a project. Everything that can refuse (not a repository, no
 * commit, an invalid orch.yaml, no agent CLI) is checked before anything is written.
 */
export async function initCommand(
  cwd: string,
  env: Env,
  opts: { agent?: string; name?: string },
): Promise<InitResult> {
  const root = await projectRoot(cwd);
  const configPath = join(root, 'orch.yaml');
  const created = !existsSync(configPath);
  let agent: AgentChoice | null = null;
  if (created) {
    agent = chooseAgent(opts.agent, env.PATH);
    if (agent.kind === 'none') throw new OrchError('agent_not_found', noneFoundText());
    const name = opts.name ?? basename(root).replace(/[^A-Za-z0-9._-]/g, '-');
    writeFileSync(
      configPath,
      defaultConfigText({
        name,
        keyPrefix: keyPrefixFor(name),
        baseBranch: await currentBranch(root),
        testCommand: detectTestCommand(root),
        agent: adapterOf(agent) ?? 'scripted',
      }),
    );
  } else {
    loadProjectConfig(configPath);
  }
  mkdirSync(join(root, '.orch'), { recursive: true });
  const ctx = await openContext(root, env);
  try {
    const project = await registerProject(ctx, root, opts.name);
    return { project, configPath, created, agent };
  } finally {
    await ctx.close();
  }
}

/** What `orch init` prints. */
export function initText(r: InitResult, agentOption: string | undefined): string {
  const lines = [`${r.created ? 'wrote' : 'kept'} ${r.configPath}`];
  if (r.agent) lines.push(choiceText(r.agent));
  else if (agentOption)
    lines.push(`--agent ${agentOption} not applied: orch.yaml exists, its agents are as they were`);
  lines.push(
    `project ${r.project.name} (keys ${r.project.key_prefix}-N, base ${r.project.base_branch})`,
    'next: orch doctor, then orch task add "…" && orch run',
  );
  return lines.join('\n');
}
