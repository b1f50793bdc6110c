/** `orch config show`: the effective configuration of each project, defaults included. */
import { z } from 'zod';
import type { OrchContext } from '../../runtime/context.ts';
import { ProjectConfigSchema } from '../../config/project-config.ts';
import { stringify } from 'yaml';
import { json } from '../../core/format.ts';
import { stateDiagram } from '../../core/pipeline-diagram.ts';
import { projectPlan } from '../../config/settings.ts';

export async function configShow(ctx: OrchContext, asJson: boolean, projectName?: string): Promise<string> {
  const out: Record<string, unknown> = {};
  for (const p of await ctx.store.listProjects()) {
    if (projectName && p.name !== projectName) continue;
    const rt = await ctx.projectRuntime(p.id);
    out[p.name] = {
      config_file: rt.configPath,
      config_error: ctx.configError(p.id),
      file: rt.raw,
      effective: { ...rt.config, pipeline: rt.pipeline },
    };
  }
  return asJson ? json(out) : stringify(out, { lineWidth: 0 });
}

/** The JSON Schema of `orch.yaml`, for editors (`# yaml-language-server: $schema=…`). */
export const configJsonSchema = (): Record<string, unknown> =>
  z.toJSONSchema(ProjectConfigSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;

/** The state diagram (Mermaid) of a project's pipeline; of the default pipeline outside a project. */
export async function configDiagram(ctx: OrchContext | null, projectName?: string): Promise<string> {
  if (!ctx) return stateDiagram(projectPlan(ProjectConfigSchema.parse({}), {}).plan);
  const projects = (await ctx.store.listProjects()).filter((p) => !projectName || p.name === projectName);
  const out: string[] = [];
  for (const p of projects) {
    const rt = await ctx.projectRuntime(p.id);
    out.push(projects.length > 1 ? `%% ${p.name}\n${stateDiagram(rt.plan)}` : stateDiagram(rt.plan));
  }
  return out.join('\n');
}
