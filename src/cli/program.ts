/** orch's command line: parse, call, format (started by main.ts). */
import { Argument, Command, CommanderError, InvalidArgumentError } from 'commander';
import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import type { OrchContext } from '../runtime/context.ts';
import { createLogger, secretValues } from '../runtime/logger.ts';
import { OrchError, exitCodeFor } from '../errors.ts';
import { json } from '../core/format.ts';
import { ORCH_VERSION } from '../version.ts';
import { TASK_STATUSES } from '../core/stages.ts';
import { INIT_AGENTS, adapterOf } from './commands/init-agent.ts';
import { commandSpec, completionScript, SHELLS, type Shell } from './completion.ts';
import { terminalSafe } from '../core/text.ts';
import { out } from './output.ts';

// Each command loads what it needs when it runs: `orch run` never loads the HTTP server, the
// metrics or the dashboard, and every process stays smaller (issue 12: memory).
const tasks = () => import('../runtime/tasks.ts');
const summary = async () => (await import('../runtime/views.ts')).taskSummary;

const env = process.env;
const log = createLogger({
  secrets: secretValues(env),
  level: env.ORCH_LOG_LEVEL === 'debug' ? 'debug' : 'info',
});

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('a positive integer');
  return n;
};
const positiveNumber = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a positive number');
  return n;
};

/**
 * Opens the home; every project's config is validated first, except for `status`, which reports
 * it. `lenient`: a person's reads and cancel go on with the built-in defaults past a broken
 * orch.yaml (saying so on stderr), so an edit, or an agent, cannot lock them out.
 */
async function withContext<T>(
  fn: (ctx: OrchContext) => Promise<T>,
  validate: boolean | 'lenient' = true,
): Promise<T> {
  const lenient = validate === 'lenient';
  const { openContextFrom } = await import('../runtime/context.ts');
  const ctx = await openContextFrom(
    process.cwd(),
    env,
    (project, message) =>
      log.warn(
        lenient
          ? `orch.yaml of ${project} is invalid; this command goes on with the built-in defaults:\n${message}`
          : `orch.yaml of ${project} is invalid; keeping the last good configuration:\n${message}`,
      ),
    { lenient },
  );
  try {
    if (validate === true) for (const p of await ctx.store.listProjects()) await ctx.projectRuntime(p.id);
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

const program = new Command('orch')
  .description('Autonomous software-delivery orchestrator')
  .version(ORCH_VERSION)
  // Commander's refusals (unknown command or option, a missing or invalid argument) are thrown,
  // so they exit 2 like every refused argument; every subcommand inherits this.
  .exitOverride()
  .showHelpAfterError()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program
  .command('init')
  .description('make the current git repository an orch project (writes orch.yaml and .orch/)')
  .option(
    '--agent <adapter>',
    `agent for every role: ${INIT_AGENTS.join(', ')} (default: the first agent CLI on PATH)`,
  )
  .option('--name <name>', 'project name (default: the directory name)')
  .option('--json', 'print JSON')
  .action(async (o: { agent?: string; name?: string; json?: boolean }) => {
    if (o.agent !== undefined && !(INIT_AGENTS as readonly string[]).includes(o.agent))
      throw new OrchError(
        'invalid_argument',
        `--agent must be one of ${INIT_AGENTS.join(', ')}, got ${o.agent}`,
      );
    const { initCommand, initText } = await import('./commands/init.ts');
    const r = await initCommand(process.cwd(), env, {
      ...(o.agent ? { agent: o.agent } : {}),
      ...(o.name ? { name: o.name } : {}),
    });
    if (o.json)
      return out(
        json({
          project: r.project.name,
          config: r.configPath,
          created: r.created,
          key_prefix: r.project.key_prefix,
          agent: r.agent ? adapterOf(r.agent) : null,
        }),
      );
    out(initText(r, o.agent));
  });

const project = program.command('project').description('projects served by this orch home');
project
  .command('add <pathOrUrl>')
  .description('register another repository (a URL is cloned under ORCH_REPOS_DIR)')
  .option('--name <name>', 'project name')
  .action((target: string, o: { name?: string }) =>
    withContext(async (ctx) => {
      let dir = resolve(target);
      if (!existsSync(dir) && /^(https?:|ssh:|git@|file:)/.test(target)) {
        const name =
          o.name ??
          target
            .replace(/\.git$/, '')
            .split(/[/:]/)
            .pop()!;
        dir = resolve(ctx.settings.reposDir, 'repos', name);
        const { git } = await import('../runtime/git.ts');
        if (!existsSync(dir)) await git(process.cwd(), ['clone', '--', target, dir]);
      }
      const { registerProject } = await import('./commands/init.ts');
      const p = await registerProject(ctx, dir, o.name);
      out(`project ${p.name} registered (${p.root_path}, keys ${p.key_prefix}-N)`);
    }),
  );
project
  .command('list')
  .option('--json', 'print JSON')
  .action((o: { json?: boolean }) =>
    withContext(async (ctx) => {
      const ps = await ctx.store.listProjects();
      out(
        o.json
          ? json(
              ps.map((p) => ({
                name: p.name,
                root: p.root_path,
                base_branch: p.base_branch,
                key_prefix: p.key_prefix,
              })),
            )
          : ps.map((p) => `${p.name}\t${p.root_path}`).join('\n') || 'no projects',
      );
    }),
  );

const task = program
  .command('task')
  .description('tasks: add, list, show, depend, cancel, retry, approve, say');
/** `KEY[,KEY…]`, repeatable: every key named; an empty value (`--after "$UNSET"`) is refused. */
const keyList = (v: string, previous: string[] = []): string[] => {
  const keys = v
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  if (keys.length === 0) throw new InvalidArgumentError('name a task key, or several separated by commas');
  return [...previous, ...keys];
};
/** A task's priority: an integer from -1000 to 1000, as the API takes it. */
const priority = (v: string): number => {
  // Written in decimal digits: Number() would also take 0x10, 1e3, "5." or " 7 ".
  const n = /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < -1000 || n > 1000)
    throw new InvalidArgumentError('an integer from -1000 to 1000');
  return n;
};

task
  .command('add <title>')
  .description('add a task; it starts at stage created')
  .option('-d, --description <text>', 'what to do, in detail')
  .option('-p, --project <name>', 'project (needed when several exist)')
  .option('--priority <n>', 'higher is taken first; equal ones oldest first (-1000 to 1000)', priority)
  .option('--after <keys>', 'start only once these tasks are done (KEY[,KEY…])', keyList)
  .option('--json', 'print JSON')
  .action(
    (
      title: string,
      o: { description?: string; project?: string; priority?: number; after?: string[]; json?: boolean },
    ) =>
      withContext(async (ctx) => {
        const { after = [], json: asJson, ...opts } = o;
        if (after.length === 0) {
          const t = await (await tasks()).addTask(ctx, title, opts);
          return out(asJson ? json((await summary())(t)) : `${t.key}  ${t.title}`);
        }
        const { addTaskAfter } = await import('../runtime/dependencies.ts');
        const { dependencyText } = await import('./commands/task.ts');
        out(await dependencyText(ctx, await addTaskAfter(ctx, title, opts, after), !!asJson));
      }),
  );
task
  .command('depend <key>')
  .description('make a task wait until other tasks are done (a cycle is refused, named)')
  .requiredOption('--on <keys>', 'the tasks it waits for (KEY[,KEY…])', keyList)
  .option('--remove', 'remove these dependencies instead')
  .option('--json', 'print JSON')
  .action((key: string, o: { on: string[]; remove?: boolean; json?: boolean }) =>
    withContext(async (ctx) => {
      const deps = await import('../runtime/dependencies.ts');
      let t;
      if (o.remove) for (const on of o.on) t = await deps.removeDependency(ctx, key, on);
      else t = await deps.addDependencies(ctx, key, o.on);
      const { dependencyText } = await import('./commands/task.ts');
      out(await dependencyText(ctx, t ?? (await ctx.store.getTaskByKey(key)), !!o.json));
    }),
  );
task
  .command('list')
  .option('-p, --project <name>', 'only this project')
  .option('--status <status>', 'only tasks with this status')
  .option('--limit <n>', 'the newest n tasks (default 100)', positiveInt)
  .option('--all', 'every task, however many')
  .option('--json', 'print JSON')
  .action((o: { project?: string; status?: string; limit?: number; all?: boolean; json?: boolean }) =>
    withContext(async (ctx) => {
      const { listTasksText } = await import('./commands/task.ts');
      out(await listTasksText(ctx, o, !!o.json));
    }, 'lenient'),
  );
task
  .command('show <key>')
  .option('--tracker', 'print the tracker message chat channels show (a line per stage)')
  .option('--locale <locale>', "the tracker message's language, en or ru (default: the project's locale)")
  .option('--json', 'print JSON')
  .action((key: string, o: { tracker?: boolean; locale?: string; json?: boolean }) => {
    if (o.locale !== undefined && !o.tracker)
      throw new OrchError('invalid_argument', '--locale goes with --tracker');
    if (o.locale !== undefined && o.locale !== 'en' && o.locale !== 'ru')
      throw new OrchError('invalid_argument', `--locale must be en or ru, got ${o.locale}`);
    const locale = o.locale;
    return withContext(async (ctx) => {
      const { showTaskText, trackerText } = await import('./commands/task.ts');
      out(o.tracker ? await trackerText(ctx, key, locale, !!o.json) : await showTaskText(ctx, key, !!o.json));
    }, 'lenient');
  });
task
  .command('cancel <key>')
  .description('cancel a task and end its running agent')
  .option('--json', 'print JSON')
  .action((key: string, o: { json?: boolean }) =>
    withContext(async (ctx) => {
      const t = await (await tasks()).cancelTask(ctx, key);
      out(o.json ? json((await summary())(t)) : `${t.key} cancelled`);
    }, 'lenient'),
  );
task
  .command('retry <key>')
  .description(
    'retry an escalated task, optionally with a raised budget; the build loop resumes from its ledger',
  )
  .option('--max-attempts <n>', 'raise the attempt budget', positiveInt)
  .option('--max-usd <usd>', 'raise the USD budget', positiveNumber)
  .option('--max-tokens <n>', 'raise the token budget', positiveInt)
  .option('--max-wall-s <s>', 'raise the wall-time budget', positiveInt)
  .option('--json', 'print JSON')
  .action(
    (
      key: string,
      o: { maxAttempts?: number; maxUsd?: number; maxTokens?: number; maxWallS?: number; json?: boolean },
    ) =>
      withContext(async (ctx) => {
        const t = await (await tasks()).retryTask(ctx, key, o);
        out(o.json ? json((await summary())(t)) : `${t.key} queued again at ${t.stage}`);
      }),
  );

task
  .command('approve <key>')
  .description('approve a task waiting for a human (a human stage, or a stage with approval: true)')
  .option('--json', 'print JSON')
  .action((key: string, o: { json?: boolean }) =>
    withContext(async (ctx) => {
      const { approveTask } = await tasks();
      const t = await approveTask(ctx, key, process.env.USER ?? 'cli');
      out(o.json ? json((await summary())(t)) : `${t.key} approved at ${t.stage}`);
    }),
  );

task
  .command('say <key> <text>')
  .description("write to a task's agent: the message is put in its next run's prompt, once")
  .option(
    '--now',
    'stop the running agent and run its stage again at once with the message (resuming its session)',
  )
  .option('--json', 'print JSON')
  .action((key: string, text: string, o: { json?: boolean; now?: boolean }) =>
    withContext(async (ctx) => {
      const { sayToTask } = await tasks();
      const said = await sayToTask(ctx, key, text, process.env.USER ?? 'cli', { now: !!o.now });
      const recorded = `${said.key}: message ${said.id} recorded`;
      out(
        o.json
          ? json(said)
          : said.interrupted
            ? `${recorded}; its running agent (run ${said.interrupted_run_id}) is being stopped, and its stage runs again at once with the message`
            : o.now
              ? `${recorded}; no agent is running for it, so nothing was stopped: its next agent run reads it`
              : `${recorded} for its next agent run`,
      );
    }, 'lenient'),
  );

const config = program.command('config').description('configuration');
config
  .command('show')
  .description('the effective configuration of each project, defaults included')
  .option('-p, --project <name>', 'only this project')
  .option('--json', 'print JSON')
  .action((o: { project?: string; json?: boolean }) =>
    withContext(async (ctx) => {
      const { configShow } = await import('./commands/config.ts');
      out(await configShow(ctx, !!o.json, o.project));
    }, false),
  );
config
  .command('diagram')
  .description("the pipeline's state diagram (Mermaid); with --default, of the built-in pipeline")
  .option('-p, --project <name>', 'only this project')
  .option('--default', 'the built-in pipeline, outside any project')
  .action(async (o: { project?: string; default?: boolean }) => {
    const { configDiagram } = await import('./commands/config.ts');
    if (o.default) return out(await configDiagram(null));
    return withContext(async (ctx) => out(await configDiagram(ctx, o.project)));
  });
config
  .command('schema')
  .description('print the JSON Schema of orch.yaml (for editors)')
  .action(async () => out(json((await import('./commands/config.ts')).configJsonSchema())));

program
  .command('run')
  .description('work tasks until stopped, showing live progress')
  .option('--until-idle', 'exit 0 once no task can progress')
  .option('-c, --concurrency <n>', 'agents at once (default ORCH_CONCURRENCY or 4)', positiveInt)
  .option('--json', 'progress as JSON lines')
  .action((o: { untilIdle?: boolean; concurrency?: number; json?: boolean }) =>
    withContext(async (ctx) =>
      (await import('./commands/run.ts')).runCommand(ctx, log, {
        untilIdle: !!o.untilIdle,
        ...(o.concurrency ? { concurrency: o.concurrency } : {}),
        json: !!o.json,
      }),
    ),
  );

program
  .command('logs <key>')
  .description("the task's agent logs")
  .option('-f, --follow', 'keep printing as the agents write')
  .action((key: string, o: { follow?: boolean }) =>
    withContext(
      async (ctx) =>
        (await import('./commands/logs.ts')).logsCommand(ctx, key, !!o.follow, (s) =>
          process.stdout.write(s),
        ),
      'lenient',
    ),
  );

program
  .command('status')
  .description('projects, tasks, queue and running agents (with model and effort)')
  .option('--json', 'print JSON')
  .action((o: { json?: boolean }) =>
    withContext(
      async (ctx) => out(await (await import('./commands/status.ts')).statusText(ctx, !!o.json)),
      false,
    ),
  );

program
  .command('stats')
  .description(
    'which agent setup works best: tasks done and escalated, first-pass approval, attempts and cost per done task, run times and human interventions, per role, adapter, model, effort or variant',
  )
  .option('-p, --project <name>', 'only this project (default: every project)')
  .option('--since <when>', 'runs started since: 30d, 12h, 2w, an ISO date, or all', '30d')
  .option(
    '--by <dimensions>',
    'group by role, adapter, model, effort, variant (comma-separated)',
    'role,model,effort',
  )
  .option('--json', 'print JSON')
  .option('--csv', 'print CSV, one row per group')
  .action((o: { project?: string; since: string; by: string; json?: boolean; csv?: boolean }) =>
    withContext(async (ctx) => {
      if (o.json && o.csv) throw new OrchError('invalid_argument', 'choose one of --json and --csv');
      const { statsCommand } = await import('./commands/stats.ts');
      out(
        await statsCommand(
          ctx,
          { project: o.project, since: o.since, by: o.by },
          o.json ? 'json' : o.csv ? 'csv' : 'text',
        ),
      );
    }),
  );

program
  .command('serve')
  .description('serve the dashboard, the HTTP API and /metrics, and work the queue')
  .option('--host <host>', 'address to bind; other than loopback needs ORCH_API_TOKEN', '127.0.0.1')
  .option(
    '--port <n>',
    'port (0 picks a free one)',
    (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port, 0 to 65535');
      return n;
    },
    7700,
  )
  .option('--no-workers', 'serve only; let `orch run` or `orch worker` work the queue')
  .option('-c, --concurrency <n>', 'agents at once (default ORCH_CONCURRENCY or 4)', positiveInt)
  .action((o: { host: string; port: number; workers: boolean; concurrency?: number }) =>
    withContext(async (ctx) =>
      (await import('./commands/serve.ts')).serveCommand(ctx, log, {
        host: o.host,
        port: o.port,
        workers: o.workers,
        ...(o.concurrency ? { concurrency: o.concurrency } : {}),
      }),
    ),
  );

program
  .command('worker')
  .description('work the queue of a shared database, as one of many workers on one or many machines')
  .option('--db <url>', 'the shared database, a postgres:// URL (default ORCH_DATABASE_URL)')
  .option('-c, --concurrency <n>', 'jobs at once (default ORCH_CONCURRENCY or 4)', positiveInt)
  .option(
    '--labels <adapters>',
    'claim only jobs whose agent needs one of these adapters, comma-separated (default: any)',
  )
  .option('--until-idle', 'exit 0 once no task can progress')
  .option('--json', 'progress as JSON lines')
  .action(
    async (o: {
      db?: string;
      concurrency?: number;
      labels?: string;
      untilIdle?: boolean;
      json?: boolean;
    }) => {
      const { openWorkerContext, parseLabels, workerCommand } = await import('./commands/worker.ts');
      const onConfigError = (project: string, message: string) =>
        log.warn(`orch.yaml of ${project} is invalid; keeping the last good configuration:\n${message}`);
      const ctx = await openWorkerContext(process.cwd(), env, {
        ...(o.db ? { db: o.db } : {}),
        onConfigError,
      });
      try {
        await workerCommand(ctx, log, {
          labels: parseLabels(o.labels),
          untilIdle: !!o.untilIdle,
          json: !!o.json,
          ...(o.concurrency ? { concurrency: o.concurrency } : {}),
        });
      } finally {
        await ctx.close();
      }
    },
  );

program
  .command('demo')
  .description('run sample tasks through the whole pipeline in a temporary repository')
  .option('--clean', 'delete the temporary repository at the end')
  .action(async (o: { clean?: boolean }) => {
    const { demoCommand } = await import('./commands/demo.ts');
    await demoCommand({ keep: !o.clean, log });
  });

program
  .command('doctor')
  .description(
    'check every configured agent (binary, version, credentials, argv), git, database, worktrees, disk',
  )
  .option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    const { doctor, doctorText } = await import('./commands/doctor.ts');
    const report = await doctor(process.cwd(), env);
    out(o.json ? JSON.stringify(report, null, 2) : doctorText(report));
    if (!report.ok) process.exitCode = 1;
  });

program
  .command('completion')
  .description(
    'print the shell completion script for bash, zsh or fish (how to load it is in its first line)',
  )
  .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(SHELLS))
  .action((shell: Shell) => {
    const commands = program.commands.map((c) => c.name());
    const spec = commandSpec(program, {
      options: { '--agent': INIT_AGENTS, '--status': TASK_STATUSES, '--locale': ['en', 'ru'] },
      args: { help: commands },
    });
    process.stdout.write(completionScript(shell, spec));
  });

// `orch help task add` as well as `orch task add --help`; commander's own help command takes one word.
program.helpCommand(false);
program
  .command('help [command...]')
  .description('help for a command, e.g. orch help task add')
  .action((names: string[]) => {
    let cmd: Command = program;
    for (const [i, name] of names.entries()) {
      const next = cmd.commands.find((c) => c.name() === name || c.aliases().includes(name));
      if (!next)
        throw new OrchError(
          'invalid_argument',
          `no command "${['orch', ...names.slice(0, i + 1)].join(' ')}"; the commands of ${['orch', ...names.slice(0, i)].join(' ')} are ${cmd.commands.map((c) => c.name()).join(', ')}`,
        );
      cmd = next;
    }
    cmd.outputHelp();
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  // Commander has printed its own message (or the help, or the version) already.
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
    return;
  }
  if (error instanceof OrchError) {
    // An error may quote what an agent or a tracker wrote (a file name in git's message, a title).
    process.stderr.write(`orch: ${terminalSafe(error.message)}\n`);
  } else {
    process.stderr.write(
      `orch: unexpected error: ${terminalSafe((error as Error).stack ?? String(error))}\n`,
    );
  }
  process.exitCode = exitCodeFor(error);
});
