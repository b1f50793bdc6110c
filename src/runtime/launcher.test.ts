import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { argvPrompt, MAX_ARGV_PROMPT_BYTES } from './launcher.ts';

describe('argvPrompt', () => {
  it('passes a prompt that fits on the command line as it is', () => {
    const prompt = 'Implement the parser.\n'.repeat(100);
    expect(argvPrompt(prompt, '/logs/1-developer.prompt.md')).toBe(prompt);
  });

  it('hands a prompt over 100 000 bytes over as its file, which the kernel would refuse as one argument', () => {
    // 60 000 Cyrillic characters: 120 000 bytes in UTF-8, though under the limit in characters.
    const prompt = 'д'.repeat(60_000);
    expect(prompt.length).toBeLessThan(MAX_ARGV_PROMPT_BYTES);
    const given = argvPrompt(prompt, '/logs/1-developer.prompt.md');
    expect(given).toContain('/logs/1-developer.prompt.md');
    expect(Buffer.byteLength(given)).toBeLessThan(1000);
    // What it guards against: Linux refuses an argument over 128 KiB.
    const huge = 'x'.repeat(140_000);
    expect(spawnSync('true', [huge]).error?.message).toMatch(/E2BIG/);
    expect(spawnSync('true', [argvPrompt(huge, '/p.md')]).status).toBe(0);
  });
});
