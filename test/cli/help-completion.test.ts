/**
 * What a CLI user expects besides the commands: `orch help COMMAND…` and `orch completion
 * bash|zsh|fish`, whose scripts complete what the command tree has. The bash script is run by bash
 * here the way bash's completion runs it; zsh and fish run theirs when installed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/kit.ts';

const orch = (args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const has = (shell: string) => spawnSync('sh', ['-c', `command -v ${shell}`]).status === 0;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'orch-completion-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The commands `orch --help` lists. */
const topCommands = (): string[] =>
  [...orch(['--help']).stdout.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1]!);

describe('orch help', () => {
  it('prints the help of a command at any depth, as --help does', () => {
    const viaHelp = orch(['help', 'task', 'add']);
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toContain('Usage: orch task add [options] <title>');
    expect(viaHelp.stdout).toBe(orch(['task', 'add', '--help']).stdout);
    expect(orch(['help', 'init']).stdout).toBe(orch(['init', '--help']).stdout);
    expect(orch(['help']).stdout).toBe(orch(['--help']).stdout);
  });

  it('names the commands there are when asked for one there is not', () => {
    const r = orch(['help', 'task', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'no command "orch task nope"; the commands of orch task are add, depend, list, show',
    );
    expect(r.stdout).toBe('');
  });

  it('refuses an unknown command or option, a missing or invalid argument: exit 2, saying which', () => {
    const refusals: [string[], string][] = [
      [['bogus'], "unknown command 'bogus'"],
      [['--bogus'], "unknown option '--bogus'"],
      [['task', 'bogus'], "unknown command 'bogus'"],
      [['task', 'add'], "missing required argument 'title'"],
      [['run', '-c', 'abc'], 'a positive integer'],
      // An empty key list (a script's unset variable) must not add a task that starts at once.
      [['task', 'add', 'x', '--after', ''], 'name a task key'],
      [['task', 'add', 'x', '--after', ' , '], 'name a task key'],
      [['task', 'add', 'x', '--priority', 'abc'], 'an integer from -1000 to 1000'],
      [['task', 'add', 'x', '--priority', '1.5'], 'an integer from -1000 to 1000'],
      [['task', 'add', 'x', '--priority', '99999'], 'an integer from -1000 to 1000'],
      [['task', 'add', 'x', '--priority', '0x10'], 'an integer from -1000 to 1000'],
      [['task', 'add', 'x', '--priority', '1e2'], 'an integer from -1000 to 1000'],
      [['task', 'add', 'x', '--priority', '+5'], 'an integer from -1000 to 1000'],
    ];
    for (const [args, says] of refusals) {
      const r = orch(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(says);
    }
    expect(orch(['--version']).code).toBe(0);
  });
});

describe('orch completion', () => {
  it('refuses a shell it has no script for', () => {
    const r = orch(['completion', 'powershell']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Allowed choices are bash, zsh, fish');
  });

  it('bash: completes commands, subcommands, options and fixed values from the command tree', () => {
    const script = orch(['completion', 'bash']);
    expect(script.code).toBe(0);
    const file = join(dir, 'orch.bash');
    writeFileSync(file, script.stdout);
    /** What bash offers for the words typed so far (the last one is being completed). */
    const complete = (...words: string[]): string[] => {
      const r = spawnSync(
        'bash',
        [
          '-c',
          `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _orch; printf '%s\\n' "\${COMPREPLY[@]}"`,
          'bash',
          file,
          'orch',
          ...words,
        ],
        { encoding: 'utf8' },
      );
      expect(r.stderr).toBe('');
      return r.stdout.split('\n').filter(Boolean);
    };
    const commands = topCommands();
    expect(commands).toContain('completion');
    expect(complete('')).toEqual(expect.arrayContaining([...commands, '--version', '--help']));
    expect(complete('ta')).toEqual(['task']);
    expect(complete('task', '')).toEqual([
      'add',
      'depend',
      'list',
      'show',
      'cancel',
      'retry',
      'approve',
      'say',
      '--help',
    ]);
    expect(complete('task', 'add', '--p')).toEqual(['--project', '--priority']);
    // Options before the command do not hide it.
    expect(complete('--json', 'task', 'sh')).toEqual(['show']);
    expect(complete('init', '--agent', '')).toEqual([
      'scripted',
      'claude-code',
      'codex',
      'gemini',
      'opencode',
    ]);
    expect(complete('task', 'list', '--status', 'esc')).toEqual(['escalated']);
    expect(complete('completion', '')).toEqual(['bash', 'zsh', 'fish', '--help']);
    expect(complete('help', 'se')).toEqual(['serve']);
    // A value with no fixed set: nothing from orch, so bash falls back to file names.
    expect(complete('init', '--name', '')).toEqual([]);
  });

  it.skipIf(!has('zsh'))('zsh: the script loads and registers the completion', () => {
    const file = join(dir, 'orch.zsh');
    writeFileSync(file, orch(['completion', 'zsh']).stdout);
    const r = spawnSync('zsh', ['-c', `source "${file}" && print -r -- $_comps[orch]`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).not.toBe('');
  });

  it.skipIf(!has('fish'))('fish: completes commands and subcommands', () => {
    const file = join(dir, 'orch.fish');
    writeFileSync(file, orch(['completion', 'fish']).stdout);
    const r = spawnSync('fish', ['-c', `source ${file}; complete -C 'orch task '`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').map((l) => l.split('\t')[0])).toEqual(
      expect.arrayContaining(['add', 'list', 'show', 'cancel', 'retry', 'approve']),
    );
  });

  it('fish and zsh scripts cover every command too', () => {
    const fish = orch(['completion', 'fish']).stdout;
    const zsh = orch(['completion', 'zsh']).stdout;
    for (const command of topCommands()) {
      expect(fish).toContain(`-a '${command}'`);
      expect(zsh).toMatch(new RegExp(`subs='[^']*\\b${command}\\b`));
    }
  });
});
