/**
 * The contract every adapter keeps: argv is an array led by its binary (CLI
 * adapters), the parser never throws and keeps bad lines raw, and the
 * stateless result-line check agrees with the parser on real captured output.
 */
import { describe, expect, it } from 'vitest';
import { agentConfig, captured, launchVars } from '../../test/helpers/adapter-fixtures.ts';
import { ADAPTER_NAMES } from './adapter.ts';
import { ADAPTERS } from './registry.ts';

const CAPTURES: Record<string, string[]> = {
  'claude-code': ['claude-code-tools', 'claude-code-429', 'claude-code-500'],
  codex: ['codex-tools', 'codex-429', 'codex-500'],
  gemini: ['gemini-tools'],
  opencode: ['opencode-tools', 'opencode-400'],
  command: ['claude-code-tools'],
  scripted: ['claude-code-tools'],
};

describe.each(ADAPTER_NAMES.map((name) => [name, ADAPTERS[name]] as const))('adapter %s', (name, adapter) => {
  it('is registered under its own name', () => {
    expect(adapter.name).toBe(name);
  });

  it('builds an argv array of strings, led by the binary for a CLI adapter', () => {
    const cfg = agentConfig({ adapter: name, command: ['my-agent'] });
    const argv = adapter.argv(cfg, launchVars({ binary: '/bin/the-cli' }));
    expect(argv.every((a) => typeof a === 'string')).toBe(true);
    if (adapter.binaryName) expect(argv[0]).toBe('/bin/the-cli');
  });

  it.each(['{"type":', '{"type":"result","usage":"lots"}', '[1,2]', 'null', '\u0000{', 'x'.repeat(10_000)])(
    'never throws on %j',
    (line) => {
      const events = adapter.createParser()(line);
      expect(Array.isArray(events)).toBe(true);
      for (const e of events) if (e.type === 'error') expect(e.raw).not.toBeNull();
    },
  );

  it.each(CAPTURES[name] ?? [])('marks exactly the lines the parser takes as results in %s', (fixture) => {
    const parse = adapter.createParser();
    for (const line of captured(fixture)) {
      const hasResult = parse(line).some((e) => e.type === 'result');
      expect([line.slice(0, 60), adapter.isResultLine(line)]).toEqual([line.slice(0, 60), hasResult]);
    }
  });
});
