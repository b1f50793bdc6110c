/**
 * The event types every agent adapter normalizes to (src/agents/events.ts),
 * for the tests that check a parser's output is made of known events only.
 * Listed against the type itself, so a type added there fails to compile here
 * until it is listed.
 */
import type { AgentEvent } from '../../src/agents/events.ts';

const LISTED: Record<AgentEvent['type'], true> = {
  started: true,
  message: true,
  tool_use: true,
  tool_result: true,
  usage: true,
  retry: true,
  result: true,
  error: true,
  usage_limit: true,
};

export const AGENT_EVENT_TYPES: ReadonlySet<string> = new Set(Object.keys(LISTED));
