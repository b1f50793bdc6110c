/**
 * A fake Anthropic Messages API on loopback, for running the real Claude Code
 * CLI offline. It streams Server-Sent Events exactly as the real API does
 * (message_start, content_block_start/delta/stop, message_delta with usage,
 * message_stop) and plays a per-test script (see script-player.ts).
 *
 * Glossary: a *turn* is one model reply in a conversation; the turn asked for
 * is the number of assistant messages already in the request, so a retried
 * request asks for the same turn again. A *fault* replaces one request's reply
 * (an HTTP error, or a stream that stops mid-message and hangs). A request
 * without tools is a CLI's side request (a session title): it gets a short
 * text and never consumes the script. Claude Code needs nothing but
 * `POST /v1/messages`; `count_tokens` is answered in case a version asks.
 */
import type { ServerResponse } from 'node:http';
import type { Conversation } from './script-player.ts';
import {
  sendJson,
  startFakeServer,
  type FakeServer,
  type RecordedCall,
  type StallFault,
  type StatusFault,
} from './fake-server-kit.ts';

export type AnthropicBlock =
  { type: 'text'; text: string } | { type: 'tool_use'; name: string; input: Record<string, unknown> };

export interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
}

/** One scripted model reply. */
export interface AnthropicTurn {
  content: AnthropicBlock[];
  usage: AnthropicUsage;
  /** Faults served, one per request, before this turn's reply. */
  faults?: AnthropicFault[];
}

export type AnthropicFault =
  /** An HTTP error with an Anthropic error body; `retryAfterS` sets the retry-after header. */
  | StatusFault
  /** Sends message_start and half of the first text block, then holds the connection open. */
  | StallFault;

export type AnthropicConversation = Conversation<AnthropicTurn, AnthropicFault>;

/** What the fake saw, for assertions and for learning what the CLI asks for. */
export type RecordedRequest = RecordedCall & { model: string | null };

/** `url` is `http://127.0.0.1:<port>`, for ANTHROPIC_BASE_URL. */
export type FakeAnthropic = FakeServer<AnthropicTurn, AnthropicFault, RecordedRequest>;

const ANTHROPIC_MESSAGES = /^\/v1\/messages(\?|$)/;

interface MessagesBody {
  model?: string;
  stream?: boolean;
  messages?: { role?: string }[];
  tools?: unknown[];
}

function sse(res: ServerResponse, type: string, data: Record<string, unknown>): void {
  res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
}

let messageSeq = 0;
const AUX_USAGE: AnthropicUsage = { input_tokens: 1, output_tokens: 1 };

/** Opens the event stream of a new message with its message_start. */
function startMessage(res: ServerResponse, model: string, usage: Record<string, number>): void {
  messageSeq += 1;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  sse(res, 'message_start', {
    message: {
      id: `msg_fake_${messageSeq}`,
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage,
    },
  });
}

function streamTurn(res: ServerResponse, model: string, turn: AnthropicTurn): void {
  startMessage(res, model, {
    input_tokens: turn.usage.input_tokens,
    output_tokens: 1,
    cache_read_input_tokens: turn.usage.cache_read_input_tokens ?? 0,
    cache_creation_input_tokens: turn.usage.cache_creation_input_tokens ?? 0,
  });
  turn.content.forEach((block, index) => {
    if (block.type === 'text') {
      sse(res, 'content_block_start', { index, content_block: { type: 'text', text: '' } });
      // Two deltas, so the client really assembles the text.
      const half = Math.ceil(block.text.length / 2);
      for (const part of [block.text.slice(0, half), block.text.slice(half)])
        if (part) sse(res, 'content_block_delta', { index, delta: { type: 'text_delta', text: part } });
    } else {
      const id = `toolu_fake_${messageSeq}_${index}`;
      sse(res, 'content_block_start', {
        index,
        content_block: { type: 'tool_use', id, name: block.name, input: {} },
      });
      const json = JSON.stringify(block.input);
      const cut = Math.ceil(json.length / 2);
      for (const part of [json.slice(0, cut), json.slice(cut)])
        sse(res, 'content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: part } });
    }
    sse(res, 'content_block_stop', { index });
  });
  const toolUse = turn.content.some((b) => b.type === 'tool_use');
  sse(res, 'message_delta', {
    delta: { stop_reason: toolUse ? 'tool_use' : 'end_turn', stop_sequence: null },
    usage: { output_tokens: turn.usage.output_tokens },
  });
  sse(res, 'message_stop', {});
  res.end();
}

function stall(res: ServerResponse, model: string): void {
  startMessage(res, model, { input_tokens: 10, output_tokens: 1 });
  sse(res, 'content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
  sse(res, 'content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'I will now' } });
}

/** Starts the fake on 127.0.0.1 with an ephemeral port. */
export function startFakeAnthropic(
  initial: AnthropicConversation | AnthropicConversation[] = { turns: [] },
): Promise<FakeAnthropic> {
  return startFakeServer<AnthropicTurn, AnthropicFault, MessagesBody, { model: string | null }>(
    {
      model: (_path, parsed) => (typeof parsed.model === 'string' ? parsed.model : 'claude-fake'),
      recordExtra: (parsed) => ({ model: parsed.model ?? null }),
      aside({ method, path, parsed, model }, res) {
        if (method === 'POST' && path.startsWith('/v1/messages/count_tokens')) {
          sendJson(res, 200, { input_tokens: 100 });
          return 'aux';
        }
        if (method !== 'POST' || !ANTHROPIC_MESSAGES.test(path)) {
          sendJson(res, 404, { type: 'error', error: { type: 'not_found_error', message: path } });
          return 'not_found';
        }
        if (!parsed.tools?.length) {
          // A side request without tools (a session title, a summary): answered, never scripted.
          streamTurn(res, model, { content: [{ type: 'text', text: 'Fake title' }], usage: AUX_USAGE });
          return 'aux';
        }
        return undefined;
      },
      turnOf: (parsed) => (parsed.messages ?? []).filter((m) => m.role === 'assistant').length,
      matchText: (parsed) => JSON.stringify(parsed.messages ?? []),
      unmatched: (res) =>
        sendJson(res, 400, {
          type: 'error',
          error: { type: 'invalid_request_error', message: 'no scripted conversation matches' },
        }),
      statusBody(status) {
        const type = status === 429 ? 'rate_limit_error' : status === 529 ? 'overloaded_error' : 'api_error';
        return { type: 'error', error: { type, message: `fake ${status}` } };
      },
      stall,
      stream: (res, model, turn) => streamTurn(res, model, turn),
      beyond: { content: [{ type: 'text', text: 'Nothing more to do.' }], usage: AUX_USAGE },
    },
    initial,
  );
}
