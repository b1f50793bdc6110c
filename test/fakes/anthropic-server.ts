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
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ScriptPlayer, type Conversation } from './script-player.ts';

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
  | { kind: 'status'; status: number; retryAfterS?: number }
  /** Sends message_start and half of the first text block, then holds the connection open. */
  | { kind: 'stall' };

export type AnthropicConversation = Conversation<AnthropicTurn, AnthropicFault>;

/** What the fake saw, for assertions and for learning what the CLI asks for. */
export interface RecordedRequest {
  method: string;
  path: string;
  /** The turn a messages request asked for; null for other endpoints. */
  turn: number | null;
  /** Index of the scripted conversation it matched. */
  conversation: number | null;
  model: string | null;
  served: 'turn' | 'fault' | 'beyond' | 'aux' | 'unmatched' | 'not_found';
  body: unknown;
}

export interface FakeAnthropic {
  /** `http://127.0.0.1:<port>`, for ANTHROPIC_BASE_URL. */
  url: string;
  requests: RecordedRequest[];
  /** Replaces the script and forgets served faults and requests. */
  play(script: AnthropicConversation | AnthropicConversation[]): void;
  close(): Promise<void>;
}

const ANTHROPIC_MESSAGES = /^\/v1\/messages(\?|$)/;

interface MessagesBody {
  model?: string;
  stream?: boolean;
  messages?: { role?: string }[];
  tools?: unknown[];
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });

function sse(res: ServerResponse, type: string, data: Record<string, unknown>): void {
  res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
}

let messageSeq = 0;
const AUX_USAGE: AnthropicUsage = { input_tokens: 1, output_tokens: 1 };

function streamTurn(res: ServerResponse, model: string, turn: AnthropicTurn): void {
  messageSeq += 1;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const usage = {
    input_tokens: turn.usage.input_tokens,
    output_tokens: 1,
    cache_read_input_tokens: turn.usage.cache_read_input_tokens ?? 0,
    cache_creation_input_tokens: turn.usage.cache_creation_input_tokens ?? 0,
  };
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

function serveFault(
  res: ServerResponse,
  model: string,
  fault: AnthropicFault,
  held: Set<ServerResponse>,
): void {
  if (fault.kind === 'status') {
    const type =
      fault.status === 429 ? 'rate_limit_error' : fault.status === 529 ? 'overloaded_error' : 'api_error';
    res.writeHead(fault.status, {
      'content-type': 'application/json',
      ...(fault.retryAfterS !== undefined ? { 'retry-after': String(fault.retryAfterS) } : {}),
    });
    res.end(JSON.stringify({ type: 'error', error: { type, message: `fake ${fault.status}` } }));
    return;
  }
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
      usage: { input_tokens: 10, output_tokens: 1 },
    },
  });
  sse(res, 'content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
  sse(res, 'content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'I will now' } });
  // …and nothing more: the connection stays open until the fake closes.
  held.add(res);
}

/** Starts the fake on 127.0.0.1 with an ephemeral port. */
export async function startFakeAnthropic(
  initial: AnthropicConversation | AnthropicConversation[] = { turns: [] },
): Promise<FakeAnthropic> {
  const player = new ScriptPlayer<AnthropicTurn, AnthropicFault>();
  player.play(initial);
  const requests: RecordedRequest[] = [];
  const held = new Set<ServerResponse>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const text = await readBody(req);
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      /* kept as text */
    }
    const path = req.url ?? '/';
    const parsed = (typeof body === 'object' && body !== null ? body : {}) as MessagesBody;
    const model = typeof parsed.model === 'string' ? parsed.model : 'claude-fake';
    const record = (r: Pick<RecordedRequest, 'turn' | 'conversation' | 'served'>) =>
      requests.push({ method: req.method ?? '', path, model: parsed.model ?? null, body, ...r });

    if (req.method === 'POST' && path.startsWith('/v1/messages/count_tokens')) {
      record({ turn: null, conversation: null, served: 'aux' });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ input_tokens: 100 }));
      return;
    }
    if (req.method !== 'POST' || !ANTHROPIC_MESSAGES.test(path)) {
      record({ turn: null, conversation: null, served: 'not_found' });
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type: 'not_found_error', message: path } }));
      return;
    }
    if (!parsed.tools?.length) {
      // A side request without tools (a session title, a summary): answered, never scripted.
      record({ turn: null, conversation: null, served: 'aux' });
      streamTurn(res, model, { content: [{ type: 'text', text: 'Fake title' }], usage: AUX_USAGE });
      return;
    }
    const turnIndex = (parsed.messages ?? []).filter((m) => m.role === 'assistant').length;
    const pick = player.pick(JSON.stringify(parsed.messages ?? []), turnIndex);
    switch (pick.kind) {
      case 'unmatched':
        record({ turn: turnIndex, conversation: null, served: 'unmatched' });
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            type: 'error',
            error: { type: 'invalid_request_error', message: 'no scripted conversation matches' },
          }),
        );
        return;
      case 'fault':
        record({ turn: turnIndex, conversation: pick.conversation, served: 'fault' });
        serveFault(res, model, pick.fault, held);
        return;
      case 'beyond':
        record({ turn: turnIndex, conversation: pick.conversation, served: 'beyond' });
        streamTurn(res, model, {
          content: [{ type: 'text', text: 'Nothing more to do.' }],
          usage: AUX_USAGE,
        });
        return;
      case 'turn':
        record({ turn: turnIndex, conversation: pick.conversation, served: 'turn' });
        streamTurn(res, model, pick.turn);
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500);
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    play(next) {
      player.play(next);
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of held) res.destroy();
        held.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
