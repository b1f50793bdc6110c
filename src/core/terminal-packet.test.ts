import { describe, expect, it } from 'vitest';
import { TERMINAL_REASONS, type AttemptRecord } from './build-loop.ts';
import { renderTerminalPacket, type TerminalPacketInput } from './terminal-packet.ts';

const HASH_1 = '81ee6252c171' + '0'.repeat(52);
const HASH_2 = '9baa824954f4' + '1'.repeat(52);

const attempts: AttemptRecord[] = [
  {
    n: 1,
    diffHash: HASH_1,
    verdict: 'rejected',
    feedback: "Half-up rounding biases sums: use banker's rounding.",
    inputTokens: 300,
    outputTokens: 240,
    costUsd: 0.0166,
    durationMs: 1_500,
    reason: null,
  },
  {
    n: 2,
    diffHash: HASH_2,
    verdict: 'rejected',
    feedback: "Banker's rounding surprises users: use half-up.",
    inputTokens: 310,
    outputTokens: 247,
    costUsd: null,
    durationMs: 2_250,
    reason: 'oscillation_detected | see ledger',
  },
];

const input = (over: Partial<TerminalPacketInput> = {}): TerminalPacketInput => ({
  taskKey: 'ORCH-109',
  title: 'Choose a rounding mode',
  stage: 'review',
  reason: 'oscillation_detected',
  detail: 'attempt 3 returned to the diff of attempt 1 (81ee6252c171) after trying another',
  attempts,
  lastFeedback: "Banker's rounding surprises users: use half-up.",
  diffStat: ' src/round.js | 1 +\n 1 file changed, 1 insertion(+)\n',
  ledgerPath: '/repo/.orch/artifacts/ORCH-109/attempt_ledger.jsonl',
  ...over,
});

/** The Markdown section under a `## ` heading, up to the next heading. */
const section = (md: string, heading: string): string => {
  const start = md.indexOf(`## ${heading}\n`);
  if (start === -1) throw new Error(`no section "${heading}" in:\n${md}`);
  const rest = md.slice(start + heading.length + 4);
  const end = rest.indexOf('\n## ');
  return (end === -1 ? rest : rest.slice(0, end)).trim();
};

describe('renderTerminalPacket', () => {
  const md = renderTerminalPacket(input());

  it('names the task, its title, stage and the reason', () => {
    expect(md.split('\n')[0]).toBe('# Terminal packet: ORCH-109');
    expect(md).toContain('- **Task:** ORCH-109 — Choose a rounding mode');
    expect(md).toContain('- **Stage:** review');
    expect(md).toContain('- **Reason:** `oscillation_detected`');
    expect(md).toContain('- **Detail:** attempt 3 returned to the diff of attempt 1');
  });

  it('totals the attempts: count, tokens and known cost', () => {
    expect(md).toContain('- **Attempts:** 2, 1097 tokens, $0.0166');
  });

  it('has an attempts table with one row per attempt: number, short diff hash, verdict, usage', () => {
    const table = section(md, 'Attempts').split('\n');
    expect(table[0]).toBe('| # | diff hash | verdict | tokens | cost | duration | reason |');
    expect(table[1]).toBe('|---|---|---|---|---|---|---|');
    expect(table.slice(2)).toEqual([
      '| 1 | `81ee6252c171` | rejected | 540 | $0.0166 | 1.5s |  |',
      '| 2 | `9baa824954f4` | rejected | 557 | unknown | 2.3s | oscillation_detected \\| see ledger |',
    ]);
  });

  it('shows the last feedback', () => {
    expect(section(md, 'Last feedback')).toBe("Banker's rounding surprises users: use half-up.");
  });

  it('shows the diff stat in a code block', () => {
    expect(section(md, 'Final diff stat')).toBe(
      '```\n src/round.js | 1 +\n 1 file changed, 1 insertion(+)\n```',
    );
  });

  it('says what a human must decide for the reason', () => {
    expect(section(md, 'What a human must decide')).toMatch(/alternating between the same solutions/);
  });

  it('says how to continue: orch task retry KEY, and which attempt comes next', () => {
    const cont = section(md, 'To continue');
    expect(cont).toContain('orch task retry ORCH-109 --max-attempts 5');
    expect(cont).toContain('the next one is number 3');
    expect(cont).toContain('/repo/.orch/artifacts/ORCH-109/attempt_ledger.jsonl');
  });

  it('renders a stop before any attempt', () => {
    const empty = renderTerminalPacket(
      input({ reason: 'budget_exhausted', attempts: [], lastFeedback: null, diffStat: '' }),
    );
    expect(section(empty, 'Attempts')).toContain('| – | – | – | – | – | – | no attempt recorded |');
    expect(empty).toContain('- **Attempts:** 0, 0 tokens, unknown');
    expect(section(empty, 'Last feedback')).toBe('_none_');
    expect(section(empty, 'Final diff stat')).toContain('(no change against the base branch)');
    expect(section(empty, 'What a human must decide')).toMatch(/budget ran out/);
    expect(empty).toContain('orch task retry ORCH-109 --max-attempts 3');
  });

  it('keeps a multi-line feedback whole, and flattens newlines in table cells', () => {
    const out = renderTerminalPacket(
      input({
        lastFeedback: '  1. Add a test.\n2. Rename x.  \n',
        attempts: [{ ...attempts[0]!, reason: 'line one\nline two' }],
      }),
    );
    expect(section(out, 'Last feedback')).toBe('1. Add a test.\n2. Rename x.');
    expect(section(out, 'Attempts')).toContain('| line one line two |');
  });

  it.each(TERMINAL_REASONS.map((reason) => ({ reason })))(
    'has its own decision text for $reason',
    ({ reason }) => {
      const decision = section(renderTerminalPacket(input({ reason })), 'What a human must decide');
      expect(decision.length).toBeGreaterThan(20);
      const others = TERMINAL_REASONS.filter((r) => r !== reason).map((r) =>
        section(renderTerminalPacket(input({ reason: r })), 'What a human must decide'),
      );
      expect(others).not.toContain(decision);
    },
  );

  it('tells a rejected design apart from a rejected build', () => {
    const design = section(
      renderTerminalPacket(input({ reason: 'design_rejected' })),
      'What a human must decide',
    );
    expect(design).toMatch(/design was rejected/i);
    const build = section(
      renderTerminalPacket(input({ reason: 'max_attempts' })),
      'What a human must decide',
    );
    expect(build).not.toMatch(/design/i);
  });
});

describe('the retry command raises what stopped the task', () => {
  const budget = { maxAttempts: 5, maxTokens: 1000, maxUsd: 0.5, maxWallS: 600 };
  it.each([
    ['budget_exhausted', 'cost $0.6000 reached the task budget of $0.5', ' --max-usd 1'],
    ['budget_exhausted', 'tokens 1200 reached the task budget of 1000', ' --max-tokens 2000'],
    ['budget_exhausted', 'wall time 700s reached the task budget of 600s', ' --max-wall-s 1200'],
    ['max_attempts', '2 of 2 attempts used', ' --max-attempts 5'],
    ['agent_failure', 'developer failed 4 times', ''],
  ] as const)('%s (%s)', (reason, detail, options) => {
    const md = renderTerminalPacket(input({ reason, detail, budget }));
    expect(md).toContain(`orch task retry ORCH-109${options}\n`);
  });
});
