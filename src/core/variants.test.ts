import { describe, expect, it } from 'vitest';
import { assignVariant, hash32, withVariant, type Variant } from './variants.ts';

const keys = (n: number) => Array.from({ length: n }, (_, i) => `APP-${i + 1}`);
const share = (variants: Variant[], role: string, n: number) => {
  const counts: Record<string, number> = {};
  for (const key of keys(n)) {
    const v = assignVariant(variants, key, role)!;
    counts[v.name] = (counts[v.name] ?? 0) + 1;
  }
  return counts;
};

describe('assignVariant', () => {
  const ab: Variant[] = [
    { name: 'opus-xhigh', weight: 3, model: 'claude-opus-4-8', effort: 'xhigh' },
    { name: 'sonnet-high', weight: 1, model: 'claude-sonnet-4-5', effort: 'high' },
  ];

  it('has nothing to assign without variants', () => {
    expect(assignVariant(undefined, 'APP-1', 'developer')).toBeNull();
    expect(assignVariant([], 'APP-1', 'developer')).toBeNull();
  });

  it('gives every task the only variant there is', () => {
    const only = [{ name: 'one', weight: 0.5 }];
    for (const key of keys(50)) expect(assignVariant(only, key, 'reviewer')).toBe(only[0]);
  });

  it('gives a task the same variant every time: a retry, another process, another worker', () => {
    for (const key of keys(200))
      expect(assignVariant(ab, key, 'developer')).toBe(assignVariant([...ab], key, 'developer'));
  });

  it('hashes as FNV-1a with the MurmurHash3 finalizer (values from an independent implementation)', () => {
    // Pinned: another hash would move the tasks of running experiments to other variants.
    expect([hash32(''), hash32('a'), hash32('developer\u0000APP-1'), hash32('reviewer\u0000APP-2')]).toEqual([
      2872998923, 444641715, 2220965789, 3138671202,
    ]);
  });

  it('shares tasks out by weight, for sequential keys too', () => {
    const counts = share(ab, 'developer', 8000);
    expect(counts['opus-xhigh']! / 8000).toBeGreaterThan(0.72);
    expect(counts['opus-xhigh']! / 8000).toBeLessThan(0.78);
    const even = share(
      [
        { name: 'a', weight: 1 },
        { name: 'b', weight: 1 },
        { name: 'c', weight: 2 },
      ],
      'reviewer',
      8000,
    );
    expect(even.a! / 8000).toBeCloseTo(0.25, 1);
    expect(even.b! / 8000).toBeCloseTo(0.25, 1);
    expect(even.c! / 8000).toBeCloseTo(0.5, 1);
  });

  it('assigns the roles independently of each other', () => {
    const half: Variant[] = [
      { name: 'x', weight: 1 },
      { name: 'y', weight: 1 },
    ];
    let same = 0;
    for (const key of keys(4000))
      if (assignVariant(half, key, 'developer')!.name === assignVariant(half, key, 'reviewer')!.name)
        same += 1;
    // Independent coin flips agree half the time; the same hash for both roles would agree always.
    expect(same / 4000).toBeGreaterThan(0.45);
    expect(same / 4000).toBeLessThan(0.55);
  });
});

describe('withVariant', () => {
  const role = { adapter: 'claude-code', model: 'claude-opus-4-8', max_turns: 40, env: { A: '1' } };

  it("puts the variant's keys over the role's and leaves the rest", () => {
    expect(
      withVariant(role, {
        name: 'v',
        weight: 2,
        model: 'claude-sonnet-4-5',
        system_prompt_append: 'Be brief.',
      }),
    ).toEqual({ ...role, model: 'claude-sonnet-4-5', system_prompt_append: 'Be brief.' });
  });

  it('is the role itself without a variant, and never copies name or weight', () => {
    expect(withVariant(role, null)).toBe(role);
    expect(withVariant(role, { name: 'v', weight: 1 })).toEqual(role);
  });
});
