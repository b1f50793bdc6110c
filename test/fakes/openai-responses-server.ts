/**
 * A fake OpenAI Responses API on loopback, for running the real Codex CLI
 * offline. `POST /v1/responses` streams the events Codex reads
 * (response.created, response.output_item.added/done, response.output_text.delta,
 * response.completed with usage) and plays a per-test script (see
 * script-player.ts). Codex needs nothing but `POST /v1/responses`;
 * `GET /v1/models` is answered with an empty list in case a version asks.
 *
 * Glossary: a *turn* is one model response. Every tool call the fake emits has
 * a call id naming its turn (`call_t<turn>_<n>`), and Codex echoes those ids in
 * the next request's input, so the turn asked for is one past the latest turn
 * echoed; a retried request asks for the same turn again. A *fault* replaces
 * one request's reply.
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

export type ResponsesItem =
  | { type: 'message'; text: string }
  /** A function tool call; Codex's shell tool is `exec_command` with `{ cmd }`. */
  | { type: 'function_call'; name: string; arguments: Record<string, unknown> }
  /** A freeform tool call, e.g. `apply_patch` with the patch text as input. */
  | { type: 'custom_tool_call'; name: string; input: string };

export interface ResponsesUsage {
  input_tokens: number;
  output_tokens: number;
  cached_tokens?: number;
  reasoning_tokens?: number;
}

export interface ResponsesTurn {
  output: ResponsesItem[];
  usage: ResponsesUsage;
  /** Faults served, one per request, before this turn's reply. */
  faults?: ResponsesFault[];
}

export type ResponsesFault =
  | StatusFault
  /** Sends response.created and half a message, then holds the connection open. */
  | StallFault;

export type ResponsesConversation = Conversation<ResponsesTurn, ResponsesFault>;

export type RecordedResponsesRequest = RecordedCall & { model: string | null };

/** `url` is `http://127.0.0.1:<port>/v1`, for a provider's base_url. */
export type FakeResponses = FakeServer<ResponsesTurn, ResponsesFault, RecordedResponsesRequest>;

interface ResponsesBody {
  model?: string;
  input?: { type?: string; call_id?: string }[];
}

/** One past the latest turn whose tool call ids the request echoes; 0 for a fresh conversation. */
export function requestedTurn(body: ResponsesBody): number {
  let latest = -1;
  for (const item of body.input ?? []) {
    const match = /^call_t(\d+)_/.exec(item.call_id ?? '');
    if (match) latest = Math.max(latest, Number(match[1]));
  }
  return latest + 1;
}

let responseSeq = 0;

function writer(res: ServerResponse) {
  let sequence = 0;
  return (type: string, data: Record<string, unknown>) =>
    res.write(
      `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: (sequence += 1), ...data })}\n\n`,
    );
}

function outputItem(item: ResponsesItem, turn: number, index: number): Record<string, unknown> {
  const id = `t${turn}_${index}`;
  switch (item.type) {
    case 'message':
      return {
        type: 'message',
        id: `msg_${id}`,
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: item.text, annotations: [] }],
      };
    case 'function_call':
      return {
        type: 'function_call',
        id: `fc_${id}`,
        call_id: `call_${id}`,
        name: item.name,
        arguments: JSON.stringify(item.arguments),
        status: 'completed',
      };
    case 'custom_tool_call':
      return {
        type: 'custom_tool_call',
        id: `ctc_${id}`,
        call_id: `call_${id}`,
        name: item.name,
        input: item.input,
        status: 'completed',
      };
  }
}

function baseResponse(model: string): Record<string, unknown> {
  responseSeq += 1;
  return {
    id: `resp_fake_${responseSeq}`,
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    status: 'in_progress',
    model,
    output: [],
  };
}

function streamTurn(res: ServerResponse, model: string, turn: ResponsesTurn, turnIndex: number): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const send = writer(res);
  const response = baseResponse(model);
  send('response.created', { response });
  send('response.in_progress', { response });
  const items = turn.output.map((item, index) => outputItem(item, turnIndex, index));
  items.forEach((item, index) => {
    const source = turn.output[index]!;
    if (source.type === 'message') {
      send('response.output_item.added', {
        output_index: index,
        item: { ...item, status: 'in_progress', content: [] },
      });
      send('response.content_part.added', {
        item_id: item.id,
        output_index: index,
        content_index: 0,
        part: { type: 'output_text', text: '', annotations: [] },
      });
      send('response.output_text.delta', {
        item_id: item.id,
        output_index: index,
        content_index: 0,
        delta: source.text,
      });
      send('response.output_text.done', {
        item_id: item.id,
        output_index: index,
        content_index: 0,
        text: source.text,
      });
    } else {
      send('response.output_item.added', { output_index: index, item: { ...item, status: 'in_progress' } });
    }
    send('response.output_item.done', { output_index: index, item });
  });
  send('response.completed', {
    response: {
      ...response,
      status: 'completed',
      output: items,
      usage: {
        input_tokens: turn.usage.input_tokens,
        input_tokens_details: { cached_tokens: turn.usage.cached_tokens ?? 0 },
        output_tokens: turn.usage.output_tokens,
        output_tokens_details: { reasoning_tokens: turn.usage.reasoning_tokens ?? 0 },
        total_tokens: turn.usage.input_tokens + turn.usage.output_tokens,
      },
    },
  });
  res.end();
}

function stall(res: ServerResponse, model: string): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const send = writer(res);
  const response = baseResponse(model);
  send('response.created', { response });
  const item = { type: 'message', id: 'msg_stalled', status: 'in_progress', role: 'assistant', content: [] };
  send('response.output_item.added', { output_index: 0, item });
  send('response.output_text.delta', {
    item_id: 'msg_stalled',
    output_index: 0,
    content_index: 0,
    delta: 'I will',
  });
}

/** Starts the fake on 127.0.0.1 with an ephemeral port. */
export function startFakeResponses(
  initial: ResponsesConversation | ResponsesConversation[] = { turns: [] },
): Promise<FakeResponses> {
  return startFakeServer<ResponsesTurn, ResponsesFault, ResponsesBody, { model: string | null }>(
    {
      urlPath: '/v1',
      model: (_path, parsed) => (typeof parsed.model === 'string' ? parsed.model : 'gpt-fake'),
      recordExtra: (parsed) => ({ model: parsed.model ?? null }),
      aside({ method, path }, res) {
        if (method === 'GET' && /^\/v1\/models(\?|$)/.test(path)) {
          sendJson(res, 200, { object: 'list', data: [], models: [] });
          return 'aux';
        }
        if (method !== 'POST' || !/^\/v1\/responses(\?|$)/.test(path)) {
          sendJson(res, 404, { error: { type: 'not_found', message: path } });
          return 'not_found';
        }
        return undefined;
      },
      turnOf: requestedTurn,
      matchText: (parsed) => JSON.stringify(parsed.input ?? []),
      unmatched: (res) =>
        sendJson(res, 400, {
          error: { type: 'invalid_request_error', message: 'no scripted conversation matches' },
        }),
      statusBody(status) {
        const type = status === 429 ? 'rate_limit_exceeded' : 'server_error';
        return { error: { type, code: type, message: `fake ${status}`, param: null } };
      },
      stall,
      stream: streamTurn,
      beyond: {
        output: [{ type: 'message', text: 'Nothing more to do.' }],
        usage: { input_tokens: 1, output_tokens: 1 },
      },
    },
    initial,
  );
}
