/**
 * `orch doctor` on real projects: the real CLIs' versions, credentials by
 * name only, dry-run argv, and the exit code a script can act on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { makeProject, type TempProject } from '../helpers/kit.ts';
import { developerProject, isRoot } from './cli-kit.ts';
import type { DoctorReport } from '../../src/cli/commands/doctor.ts';

const SECRET = 'sk-ant-doctor-secret-value-123456';
let project: TempProject | undefined;
afterEach(() => {
  project?.cleanup();
  project = undefined;
});

const doctor = (p: TempProject, env: Record<string, string> = {}) => {
  const r = p.orch(['doctor', '--json'], { env });
  return { code: r.code, report: JSON.parse(r.stdout) as DoctorReport, stdout: r.stdout, stderr: r.stderr };
};
const check = (report: DoctorReport, name: RegExp) => report.checks.filter((c) => name.test(c.name));

describe('orch doctor', () => {
  it('passes a ready project: machine checks, the CLI version, credentials named, argv shown', () => {
    project = developerProject({
      adapter: 'claude-code',
      model: 'claude-sonnet-4-5',
      env: { ANTHROPIC_API_KEY: SECRET, ...(isRoot() ? { IS_SANDBOX: '1' } : {}) },
    });
    const { code, report, stdout } = doctor(project);
    expect(code).toBe(0);
    expect(report).toMatchObject({ ok: true, failures: 0 });
    for (const name of ['git', 'database', 'worktree directory', 'disk space'])
      expect(check(report, new RegExp(`^${name}$`))[0]?.status, name).toBe('pass');
    expect(check(report, /developer \(claude-code\) binary/)[0]?.detail).toMatch(/\(Claude Code\)$/);
    expect(check(report, /developer \(claude-code\) credentials/)[0]).toMatchObject({
      status: 'pass',
      detail: 'ANTHROPIC_API_KEY set',
    });
    const dryRun = check(report, /developer \(claude-code\) dry run/)[0];
    expect(dryRun?.argv).toEqual([
      expect.stringMatching(/claude$/) as string,
      '-p',
      '--output-format',
      'stream-json',
      '--verbose',
      '--model=claude-sonnet-4-5',
      '--effort=xhigh',
      '--dangerously-skip-permissions',
      '--',
      '<prompt>',
    ]);
    // The scripted roles share one check.
    expect(check(report, /\(scripted\) binary/)).toHaveLength(1);
    expect(stdout).not.toContain(SECRET);
  });

  it('fails, with exit code 1, a missing binary, missing credentials and a root bypass without IS_SANDBOX', () => {
    project = makeProject({
      config: {
        agents: {
          default: { adapter: 'scripted' },
          developer: { adapter: 'codex', model: 'gpt-5.5', max_turns: 10 },
          reviewer: { adapter: 'opencode', binary: 'no-such-opencode' },
          tester: { adapter: 'claude-code', env: { ANTHROPIC_API_KEY: SECRET } },
        },
      },
    });
    // A HOME without logins, and no key in orch's environment.
    const { code, report, stdout } = doctor(project, { HOME: project.dir, OPENAI_API_KEY: '' });
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    expect(check(report, /developer \(codex\) binary/)[0]).toMatchObject({ status: 'pass' });
    expect(check(report, /developer \(codex\) binary/)[0]?.detail).toMatch(/codex-cli \d/);
    expect(check(report, /developer \(codex\) credentials/)[0]).toMatchObject({ status: 'fail' });
    expect(check(report, /developer \(codex\) credentials/)[0]?.detail).toMatch(
      /^none of OPENAI_API_KEY, CODEX_API_KEY/,
    );
    expect(check(report, /developer \(codex\) config/)[0]).toMatchObject({ status: 'warn' });
    expect(check(report, /reviewer \(opencode\) binary/)[0]).toMatchObject({ status: 'fail' });
    expect(check(report, /reviewer \(opencode\) binary/)[0]?.detail).toMatch(/^no-such-opencode not found/);
    expect(check(report, /tester \(claude-code\) permissions/)).toHaveLength(isRoot() ? 1 : 0);
    expect(report.failures).toBe(report.checks.filter((c) => c.status === 'fail').length);
    expect(stdout).not.toContain(SECRET);
  });

  it('prints one line a check, and says how many failed', () => {
    project = developerProject({ adapter: 'gemini', binary: 'no-such-gemini' });
    const r = project.orch(['doctor']);
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toContain(
      `✘ agent sample · developer (gemini) binary: no-such-gemini not found: install it, put it on PATH, or set agents.<role>.binary`,
    );
    expect(lines.at(-1)).toMatch(/^\d+ checks? failed$/);
  });

  it('a binary given as a path that is not there is a config problem, with its line', () => {
    project = developerProject({ adapter: 'gemini', binary: '/nope/gemini' });
    const r = project.orch(['doctor']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /✘ project sample config: invalid configuration \(1 problem\):\n +\S+orch\.yaml:\d+:\d+ +agents\.developer\.binary: \/nope\/gemini is not an executable file/,
    );
    // Everything that works from it refuses, like any invalid configuration.
    expect(project.orch(['task', 'add', 'probe']).code).toBe(2);
  });
});
