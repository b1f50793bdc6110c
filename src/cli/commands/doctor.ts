/**
 * `orch doctor`: is this machine ready to run agents? For every configured
 * agent (project, roles, adapter): its binary and `--version`, its
 * credentials (variable names only, never values), its sandbox, and a dry run
 * of its argv; then git, bubblewrap, the database, the worktree directory and
 * free disk space. Each check passes, warns or fails; any failure makes the
 * exit code 1.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentConfig } from '../../config/project-config.ts';
import type { Env } from '../../config/settings.ts';
import { ROLES, type Role } from '../../core/stages.ts';
import { resolveEffort, resolveModel } from '../../core/model.ts';
import type { AdapterFeature } from '../../agents/adapter.ts';
import { adapterFor } from '../../agents/registry.ts';
import { resolveAgentBinary } from '../../agents/binary.ts';
import { agentEnv, type ContractEnv } from '../../runtime/agent-env.ts';
import { agentCommand } from '../../runtime/launcher.ts';
import { findHome, openContext, type OrchContext, type ProjectRuntime } from '../../runtime/context.ts';
import { bwrapStatus, type BwrapStatus } from '../../runtime/process/sandbox.ts';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'info';

export interface DoctorCheck {
  /** What was checked, e.g. `git` or `agent sample · developer (claude-code) credentials`. */
  name: string;
  status: CheckStatus;
  detail: string;
  /** The dry-run argv of an agent (info checks only). */
  argv?: string[];
}

export interface DoctorReport {
  ok: boolean;
  failures: number;
  warnings: number;
  checks: DoctorCheck[];
}

/** Below this much free space a run fails to write its worktree and logs. */
const DISK_FAIL_BYTES = 512 * 1024 ** 2;
const DISK_WARN_BYTES = 2 * 1024 ** 3;
const VERSION_TIMEOUT_MS = 30_000;

const FEATURE_KEYS: readonly AdapterFeature[] = [
  'max_turns',
  'allowed_tools',
  'system_prompt_append',
  'permission_mode',
];

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  error: string | null;
}

function run(argv: readonly string[], env: Record<string, string>, cwd: string): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      argv[0]!,
      argv.slice(1),
      { env, cwd, timeout: VERSION_TIMEOUT_MS, encoding: 'utf8', maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr, error: error && code === null ? error.message : null });
      },
    );
  });
}

const firstLine = (text: string): string =>
  text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l && !/^warning/i.test(l)) ?? '';

/** Shell-quoted for display only; orch never runs agents through a shell. */
const quote = (arg: string): string =>
  /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;

const gib = (bytes: number): string => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;

function placeholderContract(role: Role, model: string, effort: string): ContractEnv {
  return {
    ORCH_TASK_KEY: '<key>',
    ORCH_TASK_TITLE: '<title>',
    ORCH_STAGE: '<stage>',
    ORCH_ROLE: role,
    ORCH_ATTEMPT: '1',
    ORCH_WORKTREE: '<worktree>',
    ORCH_PROMPT_FILE: '<prompt file>',
    ORCH_MODEL: model,
    ORCH_EFFORT: effort,
    ORCH_RUN_ID: '0',
  };
}

/** Roles sharing one agent config and argv are checked once. */
interface AgentGroup {
  roles: Role[];
  cfg: AgentConfig;
  argv: string[];
  env: Record<string, string>;
}

function agentGroups(ctx: OrchContext, rt: ProjectRuntime): AgentGroup[] {
  const groups = new Map<string, AgentGroup>();
  for (const role of ROLES) {
    const cfg = rt.config.agents[role];
    const model = resolveModel(rt.config.models, role);
    const effort = resolveEffort(rt.config.models, role);
    const command = agentCommand(ctx.env, rt, role, {
      prompt: '<prompt>',
      promptFile: '<prompt file>',
      model,
      effort,
      worktree: '<worktree>',
      key: '<key>',
    });
    const env = agentEnv(ctx.env, placeholderContract(role, model, effort), command.env, cfg.pass_env);
    const key = JSON.stringify([cfg, command.argv]);
    const group = groups.get(key);
    if (group) group.roles.push(role);
    else groups.set(key, { roles: [role], cfg, argv: command.argv, env });
  }
  return [...groups.values()];
}

async function agentChecks(ctx: OrchContext, rt: ProjectRuntime, group: AgentGroup): Promise<DoctorCheck[]> {
  const { cfg } = group;
  const adapter = adapterFor(cfg.adapter);
  const who = `agent ${rt.project.name} · ${group.roles.join(', ')} (${cfg.adapter})`;
  const checks: DoctorCheck[] = [];
  const root = rt.project.root_path;

  if (cfg.adapter === 'scripted') {
    checks.push({
      name: `${who} binary`,
      status: 'pass',
      detail: `${process.execPath} — node ${process.version}`,
    });
  } else if (cfg.adapter === 'command') {
    const exe = cfg.command?.[0];
    const found = exe
      ? resolveAgentBinary(
          { binaryName: null },
          { binary: exe },
          { pathVar: ctx.env.PATH, projectRoot: root },
        )
      : null;
    checks.push(
      found?.found
        ? {
            name: `${who} binary`,
            status: 'pass',
            detail: `${found.path} (version not asked: any program may be a command agent)`,
          }
        : {
            name: `${who} binary`,
            status: 'fail',
            detail: exe ? `${exe} not found on PATH or under ${root}` : 'agents.<role>.command is missing',
          },
    );
  } else {
    const binary = resolveAgentBinary(adapter, cfg, { pathVar: ctx.env.PATH, projectRoot: root });
    if (!binary?.found) {
      checks.push({
        name: `${who} binary`,
        status: 'fail',
        detail: `${binary?.path ?? adapter.binaryName ?? '?'} not found: install it, put it on PATH, or set agents.<role>.binary`,
      });
    } else {
      const version = await run([binary.path, '--version'], group.env, root);
      const text = firstLine(version.stdout) || firstLine(version.stderr);
      checks.push(
        version.code === 0
          ? { name: `${who} binary`, status: 'pass', detail: `${binary.path} — ${text || 'version unknown'}` }
          : {
              name: `${who} binary`,
              status: 'fail',
              detail: `${binary.path} --version failed (${version.error ?? `exit ${version.code}`}): ${text || 'no output'}`,
            },
      );
    }
  }

  if (adapter.credentials) {
    const present = adapter.credentials.env.filter((name) => group.env[name]);
    const files = adapter.credentials.files(group.env).filter((file) => existsSync(file));
    checks.push(
      present.length || files.length
        ? {
            name: `${who} credentials`,
            status: 'pass',
            detail: present.length ? `${present.join(', ')} set` : `login file ${files.join(', ')}`,
          }
        : {
            name: `${who} credentials`,
            status: 'fail',
            detail: `none of ${adapter.credentials.env.join(', ')} reaches the agent (name it in pass_env or set it in env), and no login file at ${adapter.credentials.files(group.env).join(', ')}`,
          },
    );
  }

  if (cfg.sandbox.enabled) {
    const bwrap = await bwrapStatus(ctx.env.ORCH_BWRAP || undefined);
    checks.push(
      !bwrap.ok
        ? {
            name: `${who} sandbox`,
            status: 'fail',
            detail: `sandbox enabled but ${bwrap.error}; the role's runs fail until it works (or set sandbox: false)`,
          }
        : !cfg.sandbox.network && adapter.binaryName !== null
          ? {
              name: `${who} sandbox`,
              status: 'warn',
              detail: `network off, but ${cfg.adapter} must reach its model's API: set sandbox: { network: true }`,
            }
          : {
              name: `${who} sandbox`,
              status: 'pass',
              detail: `bubblewrap, network ${cfg.sandbox.network ? 'on' : 'off'}`,
            },
    );
  }

  const ignored = FEATURE_KEYS.filter((key) => cfg[key] !== undefined && !adapter.supports.has(key));
  if (ignored.length)
    checks.push({
      name: `${who} config`,
      status: 'warn',
      detail: `${ignored.join(', ')} set but ${cfg.adapter} has no such option: ignored (docs/agents.md)`,
    });
  if (
    cfg.adapter === 'claude-code' &&
    (cfg.permission_mode ?? 'bypass') === 'bypass' &&
    process.getuid?.() === 0 &&
    group.env.IS_SANDBOX !== '1'
  )
    checks.push({
      name: `${who} permissions`,
      status: 'fail',
      detail:
        'running as root: Claude Code refuses --dangerously-skip-permissions unless IS_SANDBOX=1 is in the role env (only inside a sandbox), or use permission_mode: edits',
    });

  checks.push({
    name: `${who} dry run`,
    status: 'info',
    detail: group.argv.map(quote).join(' '),
    argv: group.argv,
  });
  return checks;
}

async function gitCheck(env: Env): Promise<DoctorCheck> {
  const ran = await run(['git', '--version'], { PATH: env.PATH ?? '/usr/bin:/bin' }, process.cwd());
  if (ran.code !== 0)
    return { name: 'git', status: 'fail', detail: `git not found or broken: ${ran.error ?? ran.stderr}` };
  const text = firstLine(ran.stdout);
  const [major = 0, minor = 0] = (/(\d+)\.(\d+)/.exec(text) ?? []).slice(1).map(Number);
  // `git worktree remove` and `move` arrived in 2.17.
  const old = major < 2 || (major === 2 && minor < 17);
  return {
    name: 'git',
    status: old ? 'fail' : 'pass',
    detail: old ? `${text}: orch needs git 2.17 or newer` : text,
  };
}

function writableCheck(dir: string): DoctorCheck {
  try {
    mkdirSync(dir, { recursive: true });
    const probe = join(dir, `.orch-doctor-${process.pid}`);
    writeFileSync(probe, 'ok');
    rmSync(probe);
    return { name: 'worktree directory', status: 'pass', detail: `${dir} (writable)` };
  } catch (error) {
    return { name: 'worktree directory', status: 'fail', detail: `${dir}: ${(error as Error).message}` };
  }
}

function diskCheck(dir: string): DoctorCheck {
  try {
    const fs = statfsSync(dir);
    const free = fs.bavail * fs.bsize;
    const status: CheckStatus = free < DISK_FAIL_BYTES ? 'fail' : free < DISK_WARN_BYTES ? 'warn' : 'pass';
    return { name: 'disk space', status, detail: `${gib(free)} free at ${dir}` };
  } catch (error) {
    return { name: 'disk space', status: 'fail', detail: `${dir}: ${(error as Error).message}` };
  }
}

/** Whether agents can be sandboxed here; only a sandboxed role makes a missing bwrap fail (its own check). */
function bwrapCheck(status: BwrapStatus): DoctorCheck {
  return status.ok
    ? { name: 'sandbox (bubblewrap)', status: 'pass', detail: `${status.path} — ${status.version}` }
    : {
        name: 'sandbox (bubblewrap)',
        status: 'info',
        detail: `${status.error}; needed only by roles with agents.<role>.sandbox`,
      };
}

/** Runs every check; never throws for a failed check. */
export async function doctor(cwd: string, env: Env): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [
    await gitCheck(env),
    bwrapCheck(await bwrapStatus(env.ORCH_BWRAP || undefined)),
  ];
  const home = findHome(cwd, env);
  if (!home) {
    checks.push({
      name: 'orch home',
      status: 'fail',
      detail: `no orch project here (${cwd}): run \`orch init\``,
    });
  } else {
    let ctx: OrchContext | null = null;
    try {
      ctx = await openContext(home, env);
      const projects = await ctx.store.listProjects();
      checks.push({
        name: 'database',
        status: 'pass',
        detail: `${ctx.database} opens (${projects.length} project${projects.length === 1 ? '' : 's'})`,
      });
      const worktrees = join(ctx.settings.reposDir, 'worktrees');
      checks.push(writableCheck(worktrees));
      checks.push(diskCheck(ctx.settings.stateDir));
      for (const project of projects) {
        let rt: ProjectRuntime;
        try {
          rt = await ctx.projectRuntime(project.id);
        } catch (error) {
          checks.push({
            name: `project ${project.name} config`,
            status: 'fail',
            detail: (error as Error).message,
          });
          continue;
        }
        for (const group of agentGroups(ctx, rt)) checks.push(...(await agentChecks(ctx, rt, group)));
      }
    } catch (error) {
      checks.push({ name: 'database', status: 'fail', detail: (error as Error).message });
    } finally {
      await ctx?.close();
    }
  }
  const failures = checks.filter((c) => c.status === 'fail').length;
  const warnings = checks.filter((c) => c.status === 'warn').length;
  return { ok: failures === 0, failures, warnings, checks };
}

const MARK: Record<CheckStatus, string> = { pass: '✔', warn: '!', fail: '✘', info: '·' };

export function doctorText(report: DoctorReport): string {
  const lines = report.checks.map((c) => `${MARK[c.status]} ${c.name}: ${c.detail}`);
  const summary = report.ok
    ? `all checks passed${report.warnings ? ` (${report.warnings} warning${report.warnings === 1 ? '' : 's'})` : ''}`
    : `${report.failures} check${report.failures === 1 ? '' : 's'} failed`;
  return [...lines, summary].join('\n');
}
