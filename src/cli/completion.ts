/**
 * `orch completion bash|zsh|fish`: shell completion scripts made from the command tree itself, so
 * a new command or option completes without anyone editing a script. They complete commands,
 * subcommands, options and the values of options and arguments with a fixed set (`--agent`,
 * `completion`'s shell, `help`'s command); anything else falls back to the shell's file names.
 */
import type { Command } from 'commander';

/** One option, as completion needs it. */
export interface OptionSpec {
  /** `--long` and `-s` spellings. */
  flags: string[];
  description: string;
  takesValue: boolean;
  /** The values it takes, when they are a fixed set. */
  values: readonly string[] | null;
}

/** One command, as completion needs it. */
export interface CommandSpec {
  name: string;
  description: string;
  options: OptionSpec[];
  /** Values of its first argument, when they are a fixed set. */
  argValues: readonly string[] | null;
  subcommands: CommandSpec[];
}

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

const HELP_OPTION: OptionSpec = {
  flags: ['--help', '-h'],
  description: 'display help',
  takesValue: false,
  values: null,
};

/** Fixed value sets commander does not know: options and arguments orch validates itself. */
export interface ExtraValues {
  /** By `--flag`. */
  options?: Readonly<Record<string, readonly string[]>>;
  /** Of a command's first argument, by command name. */
  args?: Readonly<Record<string, readonly string[]>>;
}

/** The completion spec of a commander command and everything under it. */
export function commandSpec(cmd: Command, extra: ExtraValues = {}): CommandSpec {
  const options: OptionSpec[] = cmd.options.map((o) => ({
    flags: [o.long, o.short].filter((f): f is string => !!f),
    description: o.description,
    takesValue: o.required || o.optional,
    values: o.argChoices ?? (o.long ? (extra.options?.[o.long] ?? null) : null),
  }));
  return {
    name: cmd.name(),
    description: cmd.description(),
    options: [...options, HELP_OPTION],
    argValues: cmd.registeredArguments[0]?.argChoices ?? extra.args?.[cmd.name()] ?? null,
    subcommands: cmd.commands.map((c) => commandSpec(c, extra)),
  };
}

/** Every command path of the tree (the root's is empty), with its spec. */
function paths(spec: CommandSpec, prefix: string[] = []): { path: string[]; spec: CommandSpec }[] {
  return [{ path: prefix, spec }, ...spec.subcommands.flatMap((s) => paths(s, [...prefix, s.name]))];
}

const shellWord = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The bash function (zsh runs it through bashcompinit). */
function bashFunction(root: CommandSpec): string {
  const all = paths(root);
  const subcommandCases = all
    .filter((p) => p.spec.subcommands.length)
    .map(
      (p) =>
        `      ${shellWord(p.path.join(' '))}) subs=${shellWord(p.spec.subcommands.map((s) => s.name).join(' '))} ;;`,
    );
  const valueCases = all.flatMap((p) =>
    p.spec.options
      .filter((o) => o.takesValue)
      .flatMap((o) =>
        o.flags.map((f) =>
          o.values
            ? `    ${shellWord(`${p.path.join(' ')}:${f}`)}) COMPREPLY=($(compgen -W ${shellWord(o.values.join(' '))} -- "$cur")); return ;;`
            : `    ${shellWord(`${p.path.join(' ')}:${f}`)}) return ;;`,
        ),
      ),
  );
  const wordCases = all.map((p) => {
    const words = [
      ...p.spec.subcommands.map((s) => s.name),
      ...(p.spec.argValues ?? []),
      ...p.spec.options.flatMap((o) => o.flags.filter((f) => f.startsWith('--'))),
    ];
    return `    ${shellWord(p.path.join(' '))}) words=${shellWord(words.join(' '))} ;;`;
  });
  return `_${root.name}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" path="" subs w i
  [ "$COMP_CWORD" -gt 0 ] && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  # The command path: the words before the cursor that name a subcommand of the path so far.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$path" in
${subcommandCases.join('\n')}
      *) subs='' ;;
    esac
    case " $subs " in *" $w "*) path="\${path:+$path }$w" ;; esac
  done
  case "$path:$prev" in
${valueCases.join('\n')}
  esac
  local words=''
  case "$path" in
${wordCases.join('\n')}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _${root.name} ${root.name}`;
}

function fishScript(root: CommandSpec): string {
  const lines = [`# ${root.name} completion for fish`, `complete -c ${root.name} -e`];
  const subNames = (spec: CommandSpec) => spec.subcommands.map((s) => s.name).join(' ');
  for (const { path, spec } of paths(root)) {
    // Inside `path` (every word of it seen), and none of its own subcommands typed yet.
    const inPath = path.map((p) => `__fish_seen_subcommand_from ${p}`).join('; and ');
    const here =
      path.length === 0
        ? '__fish_use_subcommand'
        : spec.subcommands.length
          ? `${inPath}; and not __fish_seen_subcommand_from ${subNames(spec)}`
          : inPath;
    const cond = path.length === 0 ? '' : here;
    for (const sub of spec.subcommands)
      lines.push(
        `complete -c ${root.name} -f -n ${shellWord(here)} -a ${shellWord(sub.name)}` +
          (sub.description ? ` -d ${shellWord(sub.description)}` : ''),
      );
    if (spec.argValues)
      lines.push(
        `complete -c ${root.name} -f -n ${shellWord(here)} -a ${shellWord(spec.argValues.join(' '))}`,
      );
    for (const o of spec.options) {
      const long = o.flags.find((f) => f.startsWith('--'))?.slice(2);
      const short = o.flags.find((f) => /^-[^-]$/.test(f))?.slice(1);
      const parts = [`complete -c ${root.name}`];
      if (cond) parts.push(`-n ${shellWord(cond)}`);
      if (long) parts.push(`-l ${long}`);
      if (short) parts.push(`-s ${short}`);
      if (o.values) parts.push(`-x -a ${shellWord(o.values.join(' '))}`);
      else if (o.takesValue) parts.push('-r');
      if (o.description) parts.push(`-d ${shellWord(o.description)}`);
      lines.push(parts.join(' '));
    }
  }
  return lines.join('\n');
}

/** The completion script for `shell`, with how to install it in its first lines. */
export function completionScript(shell: Shell, root: CommandSpec): string {
  const n = root.name;
  switch (shell) {
    case 'bash':
      return `# ${n} completion for bash. Load it from ~/.bashrc with: source <(${n} completion bash)
# or save it as ~/.local/share/bash-completion/completions/${n}
${bashFunction(root)}
`;
    case 'zsh':
      return `# ${n} completion for zsh. Load it from ~/.zshrc with: source <(${n} completion zsh)
# It runs the bash completion through zsh's bashcompinit.
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit; }
(( $+functions[complete] )) || { autoload -U +X bashcompinit && bashcompinit; }
${bashFunction(root)}
`;
    case 'fish':
      return `${fishScript(root)}
# Load it with: ${n} completion fish | source  (or save it as ~/.config/fish/completions/${n}.fish)
`;
  }
}
