import { describe, expect, it } from 'vitest';
import {
  meanDifference,
  meanInterval,
  parseSince,
  parseStatsBy,
  proportionDifference,
  tQuantile975,
  wilson,
} from './stats.ts';

const close = (actual: [number, number] | null, expected: [number, number], digits = 4) => {
  expect(actual).not.toBeNull();
  expect(actual![0]).toBeCloseTo(expected[0], digits);
  expect(actual![1]).toBeCloseTo(expected[1], digits);
};

describe('wilson', () => {
  // Reference values: Newcombe (1998), "Two-sided confidence intervals for the single proportion", table I.
  it.each([
    [81, 263, [0.2553, 0.3662]],
    [15, 148, [0.0624, 0.1605]],
    [0, 20, [0, 0.1611]],
    [1, 29, [0.0061, 0.1718]],
  ] as const)('%i of %i', (x, n, ci) => close(wilson(x, n), [ci[0], ci[1]]));

  it('has no interval without a trial, and stays within 0 and 1', () => {
    expect(wilson(0, 0)).toBeNull();
    const all = wilson(5, 5)!;
    expect(all[1]).toBe(1);
    expect(all[0]).toBeGreaterThan(0.5);
  });
});

describe('proportionDifference (Newcombe)', () => {
  // Newcombe (1998), "Interval estimation for the difference between independent proportions", table II.
  it.each([
    [56, 70, 48, 80, [0.0524, 0.3339]],
    [9, 10, 3, 10, [0.1705, 0.809]],
    [6, 7, 2, 7, [0.0582, 0.8062]],
    [5, 56, 0, 29, [-0.0381, 0.1926]],
  ] as const)('%i/%i − %i/%i', (xa, na, xb, nb, ci) =>
    close(proportionDifference(xa, na, xb, nb), [ci[0], ci[1]]),
  );

  it('has no interval when either side has no trial', () => {
    expect(proportionDifference(1, 2, 0, 0)).toBeNull();
  });
});

describe('Student t intervals', () => {
  it.each([
    [1, 12.706],
    [4, 2.776],
    [30, 2.042],
    [40, 2.021],
    [60, 2.0],
    [120, 1.98],
  ])('t(0.975, %i) = %f', (df, t) => expect(tQuantile975(df)).toBeCloseTo(t, 3));

  it('rounds a fractional df down, to the wider interval', () => {
    expect(tQuantile975(4.9)).toBe(tQuantile975(4));
  });

  it('gives the mean of 1..5 as 3 ± 1.963', () => {
    // s = 1.5811, t(4) = 2.776: half = 2.776 · 1.5811 / √5.
    close(meanInterval({ n: 5, mean: 3, variance: 2.5 }), [1.0368, 4.9632], 3);
    expect(meanInterval({ n: 1, mean: 3, variance: 0 })).toBeNull();
  });

  it("gives Welch's interval for unequal variances", () => {
    // a = 1..5 (mean 3, var 2.5), b = 2, 4, 6, 8, 10, 12 (mean 7, var 14):
    // se = √(0.5 + 2.3333) = 1.6833, df = 8.0225 / (0.0625 + 1.0889) = 6.97 → t(6) = 2.447.
    close(
      meanDifference({ n: 5, mean: 3, variance: 2.5 }, { n: 6, mean: 7, variance: 14 }),
      [-8.119, 0.119],
      2,
    );
    expect(meanDifference({ n: 2, mean: 1, variance: 0 }, { n: 3, mean: 2, variance: 0 })).toEqual([-1, -1]);
    expect(meanDifference({ n: 1, mean: 1, variance: 0 }, { n: 3, mean: 2, variance: 1 })).toBeNull();
  });
});

describe('parameters', () => {
  const now = new Date('2030-06-10T12:00:00.000Z');
  it.each([
    ['30d', '2030-05-11T12:00:00.000Z'],
    ['12h', '2030-06-10T00:00:00.000Z'],
    ['2w', '2030-05-27T12:00:00.000Z'],
    ['90m', '2030-06-10T10:30:00.000Z'],
    ['2030-01-31', '2030-01-31T00:00:00.000Z'],
    ['2030-01-31T08:00:00Z', '2030-01-31T08:00:00.000Z'],
    ['all', null],
  ])('since %s', (text, since) => expect(parseSince(text, now)).toEqual({ ok: true, since }));

  it.each(['', '30', 'd30', '30y', 'yesterday', '2030-13-45'])('refuses since %j', (text) =>
    expect(parseSince(text, now)).toEqual({ ok: false }),
  );

  it('parses the dimensions, once each, and names the first unknown one', () => {
    expect(parseStatsBy('role, model,role,variant')).toEqual(['role', 'model', 'variant']);
    expect(parseStatsBy('')).toEqual([]);
    expect(parseStatsBy('role,colour')).toEqual({ unknown: 'colour' });
  });
});
