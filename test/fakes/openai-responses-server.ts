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
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ScriptPlayer, type Conversation } from './script-player.ts';

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
  | { kind: 'status'; status: number; retryAfterS?: number }
  /** Sends response.created and half a message, then holds the connection open. */
  | { kind: 'stall' };

export type ResponsesConversation = Conversation<ResponsesTurn, ResponsesFault>;

export interface RecordedResponsesRequest {
  method: string;
  path: string;
  turn: number | null;
  conversation: number | null;
  model: string | null;
  served: 'turn' | 'fault' | 'beyond' | 'aux' | 'unmatched' | 'not_found';
  body: unknown;
}

export interface FakeResponses {
  /** `http://127.0.0.1:<port>/v1`, for a provider's base_url. */
  url: string;
  requests: RecordedResponsesRequest[];
  /** Replaces the script and forgets served faults and requests. */
  play(script: ResponsesConversation | ResponsesConversation[]): void;
  close(): Promise<void>;
}

interface ResponsesBody {
  model?: string;
  input?: { type?: string; call_id?: string }[];
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });

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

function serveFault(
  res: ServerResponse,
  model: string,
  fault: ResponsesFault,
  held: Set<ServerResponse>,
): void {
  if (fault.kind === 'status') {
    res.writeHead(fault.status, {
      'content-type': 'application/json',
      ...(fault.retryAfterS !== undefined ? { 'retry-after': String(fault.retryAfterS) } : {}),
    });
    const type = fault.status === 429 ? 'rate_limit_exceeded' : 'server_error';
    res.end(JSON.stringify({ error: { type, code: type, message: `fake ${fault.status}`, param: null } }));
    return;
  }
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
  held.add(res);
}

/** Starts the fake on 127.0.0.1 with an ephemeral port. */
export async function startFakeResponses(
  initial: ResponsesConversation | ResponsesConversation[] = { turns: [] },
): Promise<FakeResponses> {
  const player = new ScriptPlayer<ResponsesTurn, ResponsesFault>();
  player.play(initial);
  const requests: RecordedResponsesRequest[] = [];
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
    const parsed = (typeof body === 'object' && body !== null ? body : {}) as ResponsesBody;
    const model = typeof parsed.model === 'string' ? parsed.model : 'gpt-fake';
    const record = (r: Pick<RecordedResponsesRequest, 'turn' | 'conversation' | 'served'>) =>
      requests.push({ method: req.method ?? '', path, model: parsed.model ?? null, body, ...r });

    if (req.method === 'GET' && /^\/v1\/models(\?|$)/.test(path)) {
      record({ turn: null, conversation: null, served: 'aux' });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [], models: [] }));
      return;
    }
    if (req.method !== 'POST' || !/^\/v1\/responses(\?|$)/.test(path)) {
      record({ turn: null, conversation: null, served: 'not_found' });
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'not_found', message: path } }));
      return;
    }
    const turnIndex = requestedTurn(parsed);
    const pick = player.pick(JSON.stringify(parsed.input ?? []), turnIndex);
    switch (pick.kind) {
      case 'unmatched':
        record({ turn: turnIndex, conversation: null, served: 'unmatched' });
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
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
        streamTurn(
          res,
          model,
          {
            output: [{ type: 'message', text: 'Nothing more to do.' }],
            usage: { input_tokens: 1, output_tokens: 1 },
          },
          turnIndex,
        );
        return;
      case 'turn':
        record({ turn: turnIndex, conversation: pick.conversation, served: 'turn' });
        streamTurn(res, model, pick.turn, turnIndex);
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
    url: `http://127.0.0.1:${port}/v1`,
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
