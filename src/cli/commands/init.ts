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
  agent: string;
}): string {
  const agent =
    opts.agent === 'scripted'
      ? `  default:\n    adapter: scripted\n`
      : `  default:\n    adapter: claude-code        # runs claude -p … --output-format stream-json --verbose (docs/agents.md)\n    pass_env: [ANTHROPIC_API_KEY]  # the agent's own key; orch's secrets never reach it\n`;
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

/** Registers the repository at `dir` as a project in the context's store. */
export async function registerProject(
  ctx: OrchContext,
  dir: string,
  nameOverride?: string,
): Promise<Project> {
  if (!existsSync(dir) || !(await isGitRepo(dir))) {
    throw new OrchError(
      'not_a_git_repo',
      `${dir} is not a git repository (orch works on git repositories: run \`git init\` first)`,
    );
  }
  const root = await repoRoot(dir);
  const cfg = loadProjectConfig(join(root, 'orch.yaml'));
  const name = nameOverride ?? cfg.project.name ?? basename(root);
  const baseBranch = cfg.project.base_branch ?? (await currentBranch(root));
  const hasCommit = (await git(root, ['rev-list', '-n', '1', '--all'])).trim() !== '';
  if (!hasCommit)
    throw new OrchError(
      'invalid_state',
      `${root} has no commit yet: commit something first, so tasks can branch from ${baseBranch}`,
    );
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

export async function initCommand(
  cwd: string,
  env: Env,
  opts: { agent: string; name?: string },
): Promise<{ project: Project; configPath: string; created: boolean }> {
  if (!(await isGitRepo(cwd))) {
    throw new OrchError(
      'not_a_git_repo',
      `${cwd} is not a git repository (orch works on git repositories: run \`git init\` first)`,
    );
  }
  const root = await repoRoot(cwd);
  const configPath = join(root, 'orch.yaml');
  const created = !existsSync(configPath);
  if (created) {
    const name = opts.name ?? basename(root).replace(/[^A-Za-z0-9._-]/g, '-');
    writeFileSync(
      configPath,
      defaultConfigText({
        name,
        keyPrefix: keyPrefixFor(name),
        baseBranch: await currentBranch(root),
        testCommand: detectTestCommand(root),
        agent: opts.agent,
      }),
    );
  }
  mkdirSync(join(root, '.orch'), { recursive: true });
  const ctx = await openContext(root, env);
  try {
    const project = await registerProject(ctx, root, opts.name);
    return { project, configPath, created };
  } finally {
    await ctx.close();
  }
}
