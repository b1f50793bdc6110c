/**
 * Issue 6: an edited orch.yaml applies to new jobs without a restart; an
 * invalid edit keeps the last good config and is reported; prompt templates
 * are strict and checked at load, and so is every file orch.yaml names.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { makeProject, waitFor, type TempProject } from '../helpers/kit.ts';

let project: TempProject | undefined;
afterEach(() => {
  project?.cleanup();
  project = undefined;
});

const baseConfig = {
  project: { name: 'sample', key_prefix: 'T', base_branch: 'main' },
  agents: { default: { adapter: 'scripted', script: '.orch/script.yaml' } },
  retry: { base_ms: 100, max_ms: 1000 },
};

describe('configuration reload', () => {
  it('applies a valid edit to new jobs, refuses an invalid one with a report, and the work goes on', async () => {
    project = makeProject({
      config: baseConfig,
      script: {
        defaults: {
          analyst: [
            { sleep_ms: 1500 },
            { write: { path: 'docs/tasks/{{key}}/requirements.md', content: 'r\n' } },
            { write: { path: 'docs/tasks/{{key}}/test-plan.md', content: 't\n' } },
          ],
          developer: [{ sleep_ms: 1500 }, { write: { path: 'x.txt', content: 'x\n' } }],
        },
      },
    });
    const p = project;
    const configPath = join(p.dir, 'orch.yaml');
    expect(p.orch(['task', 'add', 'reload me']).code).toBe(0);
    const child = p.spawnOrch(['run', '--until-idle']);
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const ctx = await p.context();
    try {
      await waitFor(
        async () => (await ctx.store.getRunningAgents()).some((a) => a.agent === 'analyst'),
        30_000,
        'the analyst',
      );
      // A valid edit: a new default model for the jobs queued from now on.
      writeFileSync(configPath, stringify({ ...baseConfig, models: { default: 'claude-sonnet-4-6' } }));
      await waitFor(
        async () => (await ctx.store.getRunningAgents()).some((a) => a.agent === 'developer'),
        30_000,
        'the developer',
      ).catch(async (e: unknown) => {
        throw new Error(
          `${String(e)}; stderr: ${stderr}; tasks: ${JSON.stringify(await ctx.store.listTasks())}`,
        );
      });
      // An invalid edit while the developer works: refused, the last good config stays in use.
      writeFileSync(configPath, readFileSync(configPath, 'utf8') + 'budget:\n  max_attempts: -3\n');
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      expect(code, stderr).toBe(0);
      expect(stderr).toContain('keeping the last good configuration');
      expect(stderr).toContain('budget.max_attempts');

      const runs = await ctx.store.db
        .selectFrom('agent_runs')
        .select(['agent', 'model'])
        .orderBy('id')
        .execute();
      expect(runs[0]).toEqual({ agent: 'analyst', model: 'claude-opus-4-8' });
      expect(runs.slice(1).every((r) => r.model === 'claude-sonnet-4-6')).toBe(true);
      expect((await ctx.store.getTaskByKey('T-1')).status).toBe('done');

      const status = JSON.parse(p.orch(['status', '--json']).stdout) as {
        config_errors: { error: string }[];
      };
      expect(status.config_errors[0]!.error).toContain('budget.max_attempts');
    } finally {
      await ctx.close();
      child.kill('SIGKILL');
    }
  });
});

describe('prompts', () => {
  it('a stage prompt override reaches the agent, rendered with the task', () => {
    project = makeProject({
      config: {
        ...baseConfig,
        pipeline: {
          analysis: { prompt: 'Analyse {{ task.key }} ({{ task.title | upcase }}) at {{ stage }}.' },
        },
      },
      script: {},
    });
    expect(project.orch(['task', 'add', 'custom prompt']).code).toBe(0);
    expect(project.orch(['run', '--until-idle']).code).toBe(0);
    const prompt = readFileSync(join(project.dir, '.orch', 'logs', 'T-1', '1-analyst.prompt.md'), 'utf8');
    expect(prompt).toBe('Analyse T-1 (CUSTOM PROMPT) at analysis.');
  });

  it('an unknown variable or filter in a prompt is a config error at load, with its line', () => {
    project = makeProject({ config: baseConfig });
    writeFileSync(
      join(project.dir, 'orch.yaml'),
      stringify({
        ...baseConfig,
        pipeline: {
          review: { prompt: 'Review {{ task.nope }}' },
          testing: { prompt: '{{ stage | shout }}' },
        },
      }),
    );
    const r = project.orch(['task', 'add', 'probe']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/orch\.yaml:\d+:\d+ +pipeline\.review\.prompt: invalid prompt template/);
    expect(r.stderr).toMatch(/pipeline\.testing\.prompt: invalid prompt template.*shout/);
  });

  it('every file orch.yaml names is checked at load: exit 2 with file, line and key, every problem at once', () => {
    project = makeProject({ config: baseConfig });
    const dir = project.dir;
    mkdirSync(join(dir, 'prompts'));
    execFileSync('mkfifo', [join(dir, 'prompts', 'fifo.md')]);
    symlinkSync('/etc/passwd', join(dir, 'prompts', 'outside.md'));
    writeFileSync(join(dir, 'prompts', 'broken.md'), 'Review {{ task.nope }}');
    writeFileSync(
      join(dir, 'orch.yaml'),
      stringify({
        ...baseConfig,
        agents: {
          default: { adapter: 'scripted', script: 'no/such-script.yaml' },
          reviewer: { adapter: 'claude-code', binary: './bin/no-such-claude' },
        },
        pipeline: {
          analysis: { prompt_file: 'prompts/missing.md' },
          architecture: { prompt_file: 'prompts/fifo.md' },
          development: { prompt_file: 'prompts/outside.md' },
          review: { prompt_file: 'prompts/broken.md' },
        },
      }),
    );
    const r = project.orch(['task', 'add', 'probe'], { timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(2);
    const problem = (key: string, message: RegExp) =>
      expect(r.stderr).toMatch(
        new RegExp(`orch\\.yaml:\\d+:\\d+ +${key.replace(/\./g, '\\.')}: ${message.source}`),
      );
    problem('pipeline.analysis.prompt_file', /prompts\/missing\.md does not exist/);
    problem(
      'pipeline.architecture.prompt_file',
      /prompts\/fifo\.md is a FIFO \(named pipe\), not a regular file/,
    );
    problem('pipeline.development.prompt_file', /prompts\/outside\.md leads out of the project/);
    problem('pipeline.review.prompt_file', /prompts\/broken\.md: invalid prompt template/);
    problem('agents.default.script', /no\/such-script\.yaml does not exist/);
    problem('agents.reviewer.binary', /\.\/bin\/no-such-claude is not an executable file/);
    expect(r.stderr).toContain('invalid configuration (6 problems)');
  });

  it("a prompt_file's template is read at load and used for the stage; an edited file, at the next load", () => {
    project = makeProject({
      config: { ...baseConfig, pipeline: { analysis: { prompt_file: 'prompts/analysis.md' } } },
      files: { 'prompts/analysis.md': 'From a file: {{ task.key }} at {{ stage }}.' },
      script: {},
    });
    expect(project.orch(['task', 'add', 'file prompt']).code).toBe(0);
    expect(project.orch(['run', '--until-idle']).code).toBe(0);
    const logs = join(project.dir, '.orch', 'logs');
    expect(readFileSync(join(logs, 'T-1', '1-analyst.prompt.md'), 'utf8')).toBe(
      'From a file: T-1 at analysis.',
    );
    writeFileSync(join(project.dir, 'prompts', 'analysis.md'), 'Edited: {{ task.key }}.');
    expect(project.orch(['task', 'add', 'edited prompt']).code).toBe(0);
    expect(project.orch(['run', '--until-idle']).code).toBe(0);
    const second = readdirSync(join(logs, 'T-2')).find((f) => f.endsWith('-analyst.prompt.md'))!;
    expect(readFileSync(join(logs, 'T-2', second), 'utf8')).toBe('Edited: T-2.');
  });

  it('a pipeline that routes a failure forward, or a command stage without a command, is refused', () => {
    project = makeProject({ config: baseConfig });
    writeFileSync(
      join(project.dir, 'orch.yaml'),
      stringify({
        ...baseConfig,
        pipeline: { analysis: { on_fail: 'testing' }, deploy: { kind: 'command' } },
      }),
    );
    const r = project.orch(['task', 'add', 'probe']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('pipeline.analysis.on_fail: a failing gate can only send the task back');
    expect(r.stderr).toContain('pipeline.deploy.command: a command stage needs a command');
  });
});

describe('orch config show', () => {
  it('prints the effective configuration with defaults and the resolved pipeline', () => {
    project = makeProject({
      config: { ...baseConfig, pipeline: { 'deploy-staging': { enabled: false } } },
      script: {},
    });
    const r = project.orch(['config', 'show', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const cfg = JSON.parse(r.stdout) as Record<
      string,
      {
        effective: {
          timeouts: { agentTimeoutDeveloperS: number };
          pipeline: { stages: { name: string }[]; mergeStrategy: string };
        };
      }
    >;
    const eff = cfg.sample!.effective;
    expect(eff.timeouts.agentTimeoutDeveloperS).toBe(3600);
    expect(eff.pipeline.stages.map((s) => s.name)).toEqual([
      'analysis',
      'architecture',
      'development',
      'review',
      'testing',
      'deploy',
    ]);
    expect(eff.pipeline.mergeStrategy).toBe('merge');
  });
});
