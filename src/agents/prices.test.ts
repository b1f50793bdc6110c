import { describe, expect, it } from 'vitest';
import { emptyUsage, type Usage } from './events.ts';
import { DEFAULT_PRICES, costAt, costFromTable, priceFor, priceTable } from './prices.ts';

const usage = (over: Partial<Usage>): Usage => ({ ...emptyUsage(), ...over });

describe('price table', () => {
  it.each([
    ['claude-opus-4-8', 5],
    ['claude-sonnet-4-5-20250929', 3],
    ['anthropic/claude-haiku-4-5', 1],
    ['claude-opus-4-8[1m]', 5],
    ['claude-opus-4@20250514', 15],
    ['gpt-5-2025-08-07', 1.25],
    ['openai/gpt-5.5', 5],
    ['gemini-2.5-pro-preview-06-05', 1.25],
    ['GEMINI-2.5-FLASH', 0.3],
  ])('prices %s at $%d per million input tokens', (model, input) => {
    expect(priceFor(model, priceTable({}))?.input).toBe(input);
  });

  it.each(['claude-opus-4-9', 'gpt-6-sol', 'llama-3', '', null])('knows no price for %j', (model) => {
    expect(priceFor(model, priceTable({}))).toBeNull();
  });

  it('lets prices: in orch.yaml add a model and override a shipped one', () => {
    const table = priceTable({ 'my-model': { input: 2, output: 4 }, 'GPT-5': { input: 9, output: 9 } });
    expect(priceFor('my-model', table)).toEqual({ input: 2, output: 4 });
    expect(priceFor('gpt-5', table)?.input).toBe(9);
    expect(priceFor('gpt-5-mini', table)).toEqual(DEFAULT_PRICES['gpt-5-mini']);
  });

  it('charges each kind of token at its price; a missing cache price is the input price', () => {
    const tokens = {
      inputTokens: 1_000_000,
      outputTokens: 100_000,
      cacheReadTokens: 2_000_000,
      cacheWriteTokens: 10,
    };
    expect(costAt(tokens, { input: 3, output: 15, cache_read: 0.3, cache_write: 3.75 })).toBe(
      3 + 1.5 + 0.6 + 0.0000375,
    );
    expect(costAt(tokens, { input: 1, output: 2 })).toBe(3.20001);
  });

  it('prices a run per model when broken down, at its model otherwise, and never invents a 0', () => {
    const table = priceTable({});
    const perModel = usage({
      byModel: {
        'gemini-2.5-pro': { inputTokens: 1000, outputTokens: 100, cacheReadTokens: 0, cacheWriteTokens: 0 },
        'gemini-2.5-flash-lite': {
          inputTokens: 1000,
          outputTokens: 0,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
        },
      },
    });
    expect(costFromTable(perModel, table, null)).toBe(0.00235);
    expect(costFromTable(usage({ inputTokens: 1000, outputTokens: 10 }), table, 'gpt-5')).toBe(0.00135);
    expect(costFromTable(usage({ inputTokens: 1000, model: 'gpt-5' }), table, 'unpriced')).toBe(0.00125);
    expect(costFromTable(usage({ inputTokens: 1000 }), table, 'unpriced-model')).toBeNull();
    const oneUnpriced = usage({
      byModel: {
        'gpt-5': { inputTokens: 5, outputTokens: 5, cacheReadTokens: 0, cacheWriteTokens: 0 },
        'mystery-model': { inputTokens: 1, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 },
      },
    });
    expect(costFromTable(oneUnpriced, table, 'gpt-5')).toBeNull();
  });
});
