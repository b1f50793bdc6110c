/**
 * The price table: USD per million tokens per model, for agents whose CLI
 * reports tokens but no cost (Codex, Gemini CLI, OpenCode without a price).
 * Shipped defaults are list prices (the ≤200k-context tier where there are
 * tiers); `prices:` in `orch.yaml` adds models or overrides these. A model
 * without a price has an unknown cost (null), never 0.
 */
import type { TokenCounts, Usage } from './events.ts';

/** USD per million tokens. A missing cache price is charged at the input price. */
export interface ModelPrice {
  input: number;
  output: number;
  cache_read?: number;
  cache_write?: number;
}

export type PriceTable = Readonly<Record<string, ModelPrice>>;

const opus4: ModelPrice = { input: 15, output: 75, cache_read: 1.5, cache_write: 18.75 };
const opus45: ModelPrice = { input: 5, output: 25, cache_read: 0.5, cache_write: 6.25 };
const sonnet4: ModelPrice = { input: 3, output: 15, cache_read: 0.3, cache_write: 3.75 };
const haiku45: ModelPrice = { input: 1, output: 5, cache_read: 0.1, cache_write: 1.25 };
const gpt5: ModelPrice = { input: 1.25, output: 10, cache_read: 0.125 };
const gpt5mini: ModelPrice = { input: 0.25, output: 2, cache_read: 0.025 };
const gpt52: ModelPrice = { input: 1.75, output: 14, cache_read: 0.175 };

export const DEFAULT_PRICES: PriceTable = {
  'claude-opus-4': opus4,
  'claude-opus-4-0': opus4,
  'claude-opus-4-1': opus4,
  'claude-opus-4-5': opus45,
  'claude-opus-4-6': opus45,
  'claude-opus-4-7': opus45,
  'claude-opus-4-8': opus45,
  'claude-sonnet-4': sonnet4,
  'claude-sonnet-4-0': sonnet4,
  'claude-sonnet-4-5': sonnet4,
  'claude-sonnet-4-6': sonnet4,
  'claude-haiku-4-5': haiku45,
  'gpt-5': gpt5,
  'gpt-5-codex': gpt5,
  'gpt-5.1': gpt5,
  'gpt-5.1-codex': gpt5,
  'gpt-5.1-codex-max': gpt5,
  'gpt-5-mini': gpt5mini,
  'gpt-5.1-codex-mini': gpt5mini,
  'gpt-5-nano': { input: 0.05, output: 0.4, cache_read: 0.005 },
  'gpt-5.2': gpt52,
  'gpt-5.2-codex': gpt52,
  'gpt-5.3-codex': gpt52,
  'gpt-5.4': { input: 2.5, output: 15, cache_read: 0.25 },
  'gpt-5.5': { input: 5, output: 30, cache_read: 0.5 },
  'gemini-2.5-pro': { input: 1.25, output: 10, cache_read: 0.125 },
  'gemini-2.5-flash': { input: 0.3, output: 2.5, cache_read: 0.03 },
  'gemini-2.5-flash-lite': { input: 0.1, output: 0.4, cache_read: 0.01 },
};

/** The shipped table with the project's `prices:` entries over it (keys compared case-insensitively). */
export function priceTable(overrides: Readonly<Record<string, ModelPrice>> | undefined): PriceTable {
  const table: Record<string, ModelPrice> = {};
  for (const [model, price] of Object.entries({ ...DEFAULT_PRICES })) table[model.toLowerCase()] = price;
  for (const [model, price] of Object.entries(overrides ?? {})) table[model.toLowerCase()] = price;
  return table;
}

const DATE_SUFFIX = /(?:[-@]\d{8}|-\d{4}-\d{2}-\d{2})$/;

/**
 * The price of a model: exact id, then without provider prefix (`openai/`),
 * context suffix (`[1m]`) and date suffix (`-20250929`), then the longest
 * priced family it extends by a non-version suffix (`gemini-2.5-pro-preview`
 * is priced as `gemini-2.5-pro`, but `claude-opus-4-9` is not `claude-opus-4`).
 */
export function priceFor(model: string | null | undefined, table: PriceTable): ModelPrice | null {
  if (!model?.trim()) return null;
  const exact = model.trim().toLowerCase();
  const bare = exact
    .slice(exact.lastIndexOf('/') + 1)
    .replace(/\[[^\]]*\]$/, '')
    .replace(DATE_SUFFIX, '');
  const hit = table[exact] ?? table[bare];
  if (hit) return hit;
  let best: string | null = null;
  for (const key of Object.keys(table)) {
    if (!bare.startsWith(`${key}-`)) continue;
    const rest = bare.slice(key.length + 1);
    if (/^\d/.test(rest)) continue;
    if (best === null || key.length > best.length) best = key;
  }
  return best === null ? null : (table[best] ?? null);
}

/** USD for some tokens at a price, rounded to 10 decimals (no float dust). */
export function costAt(tokens: TokenCounts, price: ModelPrice): number {
  const usd =
    (tokens.inputTokens * price.input +
      tokens.outputTokens * price.output +
      tokens.cacheReadTokens * (price.cache_read ?? price.input) +
      tokens.cacheWriteTokens * (price.cache_write ?? price.input)) /
    1_000_000;
  return Math.round(usd * 1e10) / 1e10;
}

/**
 * The cost of a run from the table: per model when the CLI broke usage down
 * by model, else at the run's model (`fallbackModel` when usage names none).
 * Null when a model that used tokens has no price.
 */
export function costFromTable(usage: Usage, table: PriceTable, fallbackModel: string | null): number | null {
  if (usage.byModel && Object.keys(usage.byModel).length) {
    let total = 0;
    for (const [model, tokens] of Object.entries(usage.byModel)) {
      const used =
        tokens.inputTokens + tokens.outputTokens + tokens.cacheReadTokens + tokens.cacheWriteTokens;
      if (used === 0) continue;
      const price = priceFor(model, table);
      if (!price) return null;
      total += costAt(tokens, price);
    }
    return Math.round(total * 1e10) / 1e10;
  }
  const price = priceFor(usage.model ?? fallbackModel, table);
  return price ? costAt(usage, price) : null;
}
