import { describe, expect, it } from 'vitest';
import { cycleMessage, dependencyReadiness, findCycle, type BlockerState } from './dependencies.ts';

describe('findCycle', () => {
  it.each([
    { name: 'no edges', existing: [], added: [['A', 'B']], cycle: null },
    { name: 'a chain', existing: [['A', 'B']], added: [['B', 'C']], cycle: null },
    {
      name: 'a diamond',
      existing: [
        ['A', 'B'],
        ['A', 'C'],
        ['B', 'D'],
      ],
      added: [['C', 'D']],
      cycle: null,
    },
    { name: 'itself', existing: [], added: [['A', 'A']], cycle: ['A', 'A'] },
    { name: 'two', existing: [['A', 'B']], added: [['B', 'A']], cycle: ['B', 'A', 'B'] },
    {
      name: 'three',
      existing: [
        ['A', 'B'],
        ['B', 'C'],
      ],
      added: [['C', 'A']],
      cycle: ['C', 'A', 'B', 'C'],
    },
    {
      name: 'among the added',
      existing: [],
      added: [
        ['A', 'B'],
        ['B', 'A'],
      ],
      cycle: ['A', 'B', 'A'],
    },
  ] as const)('$name', ({ existing, added, cycle }) => {
    expect(findCycle(existing, added)).toEqual(cycle);
  });

  it('names the cycle in the refusal', () => {
    expect(cycleMessage(['T-3', 'T-1', 'T-2', 'T-3'])).toBe(
      'T-3 → T-1 → T-2 → T-3 would be a dependency cycle (each task waits for the next)',
    );
  });
});

describe('dependencyReadiness', () => {
  const b = (
    key: string,
    stage: string | null,
    status: string | null = null,
    terminal_reason: string | null = null,
  ): BlockerState => ({
    key,
    stage,
    status,
    terminal_reason,
  });

  it.each([
    { name: 'no blockers', blockers: [], want: { ready: true } },
    {
      name: 'every blocker done',
      blockers: [b('T-1', 'done', 'done'), b('T-2', 'done', 'done')],
      want: { ready: true },
    },
    {
      name: 'one at work, one not imported',
      blockers: [b('T-1', 'done', 'done'), b('T-2', 'development', 'running'), b('acme/app#9', null)],
      want: {
        ready: false,
        detail: 'waiting for T-2 (development, running), acme/app#9 (not imported yet)',
        waitsOnPerson: false,
      },
    },
    {
      name: 'an escalated blocker',
      blockers: [b('T-2', 'review', 'queued'), b('T-3', 'development', 'escalated', 'budget_exhausted')],
      want: {
        ready: false,
        detail: 'blocked by T-3 (escalated: budget_exhausted), T-2 (review, queued)',
        waitsOnPerson: true,
      },
    },
    {
      name: 'a cancelled blocker',
      blockers: [b('T-4', 'cancelled', 'cancelled', 'cancelled')],
      want: {
        ready: false,
        detail: 'blocked by T-4 (cancelled)',
        waitsOnPerson: true,
      },
    },
  ])('$name', ({ blockers, want }) => {
    expect(dependencyReadiness(blockers)).toEqual(want);
  });
});
