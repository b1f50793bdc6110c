/**
 * The files `orch.yaml` names, checked when it is loaded rather than when a
 * task first needs them: a stage's `prompt_file`, an agent's `script`, a
 * `binary` or command agent's executable given as a path. A problem is a
 * config problem like any other (exit 2, file, line and key). Prompt
 * templates, inline or from a file, are read and parsed here once; the stage
 * plan carries the parsed template and nothing reads the file again.
 *
 * A prompt file lives in the project's checkout, which landed branches update:
 * it is read like a worktree file (io/worktree-files.ts), so a relative
 * path that a landed symlink leads out of the checkout (to a key in `~/.ssh`,
 * which would then be sent to a model as a prompt) or to a FIFO is refused.
 * An absolute path is the configuration's own choice and may be anywhere.
 * Commands run in the worktree (gates, command stages, `test_command`) are
 * not checked: a relative executable there may be made by the task itself.
 */
import { access, constants } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { ROLES } from '../core/stages.ts';
import { WORK_STAGES, type WorkStage } from './pipeline-config.ts';
import { configErrorAt, type KeyProblem, type ProjectConfig } from './project-config.ts';
import { checkPromptTemplate, compilePrompt, type PromptTemplate } from './prompts.ts';
import { inspectWorktreeFile, readWorktreeFile } from '../io/worktree-files.ts';

/** Largest prompt file read, bytes (the template parser stops at a million characters anyway). */
export const MAX_PROMPT_FILE_BYTES = 1024 * 1024;

/** What loading the files gave: each stage's own template, when it has one. */
export interface ConfigFiles {
  templates: Partial<Record<WorkStage, PromptTemplate>>;
  /** Every file read, with its path, so an edit to one reloads the config like an edit of `orch.yaml`. */
  read: string[];
}

/** `path` as given in `orch.yaml` (relative to the project root, or absolute): the root to resolve it under, and the name. */
const place = (root: string, path: string): { root: string; name: string } =>
  isAbsolute(path) ? { root: '/', name: path.slice(1) } : { root, name: path };

async function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/**
 * Reads and checks every file `cfg` names. `text` is the `orch.yaml` text `cfg` was parsed from
 * (to locate problems) and `file` its path; `root` is the project root. Throws a `ConfigError`
 * listing every problem at once.
 */
export async function loadConfigFiles(
  cfg: ProjectConfig,
  text: string,
  file: string,
  root: string,
): Promise<ConfigFiles> {
  const problems: KeyProblem[] = [];
  const templates: ConfigFiles['templates'] = {};
  const read: string[] = [];
  for (const stage of WORK_STAGES) {
    const c = cfg.pipeline[stage];
    if (!c || c.enabled === false) continue;
    if (c.prompt) {
      // An inline template was checked with the schema (project-config.ts); here it is kept parsed.
      templates[stage] = {
        source: c.prompt,
        origin: `pipeline.${stage}.prompt`,
        parsed: compilePrompt(c.prompt),
      };
      continue;
    }
    if (!c.prompt_file) continue;
    const key = `pipeline.${stage}.prompt_file`;
    const at = place(root, c.prompt_file);
    const got = await readWorktreeFile(at.root, at.name, { maxBytes: MAX_PROMPT_FILE_BYTES });
    if (!got.ok) {
      problems.push({
        key,
        message:
          got.reason === 'missing'
            ? `${c.prompt_file} does not exist (relative to ${root})`
            : got.reason === 'outside'
              ? `${c.prompt_file} leads out of the project (${got.message})`
              : got.message,
      });
      continue;
    }
    read.push(resolve(root, c.prompt_file));
    const invalid = checkPromptTemplate(got.text);
    if (invalid) problems.push({ key, message: `${c.prompt_file}: ${invalid}` });
    else templates[stage] = { source: got.text, origin: c.prompt_file, parsed: compilePrompt(got.text) };
  }
  for (const entry of ['default', ...ROLES] as const) {
    const agent = cfg.agents[entry];
    if (!agent) continue;
    if (agent.script) {
      const at = place(root, agent.script);
      const found = await inspectWorktreeFile(at.root, at.name);
      if (!found.ok)
        problems.push({
          key: `agents.${entry}.script`,
          message:
            found.reason === 'missing'
              ? `${agent.script} does not exist (relative to ${root})`
              : found.message,
        });
    }
    const paths: [string, string | undefined][] = [
      [`agents.${entry}.binary`, agent.binary],
      [`agents.${entry}.command.0`, agent.adapter === 'command' ? agent.command?.[0] : undefined],
    ];
    for (const [key, path] of paths) {
      // A bare name is looked up on PATH when the agent starts (`orch doctor` checks it).
      if (!path?.includes('/')) continue;
      const full = resolve(root, path);
      if (!(await executable(full)))
        problems.push({ key, message: `${path} is not an executable file (resolved to ${full})` });
    }
  }
  if (problems.length) throw configErrorAt(text, file, problems);
  return { templates, read };
}
