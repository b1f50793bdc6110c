/** Checks made before work starts: every configured agent executable exists. */
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { OrchContext } from './context.ts';
import { ROLES } from '../core/stages.ts';
import { OrchError } from '../errors.ts';
import { adapterFor } from '../agents/registry.ts';
import { resolveAgentBinary } from '../agents/binary.ts';

/** Finds an executable the way a shell would: a path as given, else on PATH. */
export function findExecutable(name: string, cwd: string, pathVar: string | undefined): string | null {
  const ok = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (name.includes('/')) {
    const p = isAbsolute(name) ? name : resolve(cwd, name);
    return ok(p) ? p : null;
  }
  for (const dir of (pathVar ?? '').split(delimiter).filter(Boolean)) {
    const p = join(dir, name);
    if (ok(p)) return p;
  }
  return null;
}

export async function resolveAgentBinaries(ctx: OrchContext): Promise<void> {
  const missing: string[] = [];
  for (const project of await ctx.store.listProjects()) {
    const rt = await ctx.projectRuntime(project.id);
    for (const role of ROLES) {
      const agent = rt.config.agents[role];
      const cli = resolveAgentBinary(adapterFor(agent.adapter), agent, {
        pathVar: ctx.env.PATH,
        projectRoot: project.root_path,
      });
      if (cli && !cli.found)
        missing.push(
          `${rt.configPath}: agents.${role} (${agent.adapter}): executable ${JSON.stringify(cli.path)} not found (set binary:, or put it on PATH; \`orch doctor\` checks every agent)`,
        );
      if (agent.adapter !== 'command') continue;
      const exe = agent.command?.[0];
      if (!exe) {
        missing.push(`${rt.configPath}: agents.${role}.command is required for the command adapter`);
      } else if (!findExecutable(exe, project.root_path, ctx.env.PATH)) {
        missing.push(
          `${rt.configPath}: agents.${role}.command[0]: executable ${JSON.stringify(exe)} not found (PATH or path relative to ${project.root_path})`,
        );
      }
    }
  }
  if (missing.length)
    throw new OrchError(
      'agent_not_found',
      `agent executable missing:\n  ${[...new Set(missing)].join('\n  ')}`,
    );
}
