/**
 * A fake Gemini API (generativelanguage v1beta) on loopback, for running the
 * real Gemini CLI offline with `GOOGLE_GEMINI_BASE_URL`. It answers
 * `models/<model>:streamGenerateContent?alt=sse` with SSE chunks (text and
 * functionCall parts, usageMetadata on the last chunk) and plays a per-test
 * script (see script-player.ts). Non-streaming `:generateContent` (the CLI's
 * routing and next-speaker checks) and `:countTokens` get fixed answers.
 *
 * Glossary: a *turn* is one model reply; the turn asked for is the number of
 * `model` entries already in the request's contents, so a retried request asks
 * for the same turn again. A *fault* replaces one request's reply.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ScriptPlayer, type Conversation } from './script-player.ts';

export type GeminiPart =
  | { text: string }
  /** A tool call: e.g. `write_file` `{ file_path, content }`, `replace`, `run_shell_command` `{ command }`. */
  | { functionCall: { name: string; args: Record<string, unknown> } };

export interface GeminiUsage {
  promptTokenCount: number;
  candidatesTokenCount: number;
  cachedContentTokenCount?: number;
  thoughtsTokenCount?: number;
}

export interface GeminiTurn {
  parts: GeminiPart[];
  usage: GeminiUsage;
  faults?: GeminiFault[];
}

export type GeminiFault =
  | { kind: 'status'; status: number; retryAfterS?: number }
  /** Sends a first text chunk, then holds the connection open. */
  | { kind: 'stall' };

export type GeminiConversation = Conversation<GeminiTurn, GeminiFault>;

export interface RecordedGeminiRequest {
  method: string;
  path: string;
  turn: number | null;
  conversation: number | null;
  served: 'turn' | 'fault' | 'beyond' | 'aux' | 'unmatched' | 'not_found';
  body: unknown;
}

export interface FakeGemini {
  /** `http://127.0.0.1:<port>`, for GOOGLE_GEMINI_BASE_URL. */
  url: string;
  requests: RecordedGeminiRequest[];
  /** Replaces the script and forgets served faults and requests. */
  play(script: GeminiConversation | GeminiConversation[]): void;
  close(): Promise<void>;
}

interface GenerateBody {
  contents?: { role?: string }[];
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });

const modelOf = (path: string): string => /\/models\/([^:/?]+)/.exec(path)?.[1] ?? 'gemini-fake';

function chunk(res: ServerResponse, data: Record<string, unknown>): void {
  res.write(`data: ${JSON.stringify(data)}\r\n\r\n`);
}

function usageMetadata(usage: GeminiUsage): Record<string, number> {
  return {
    promptTokenCount: usage.promptTokenCount,
    candidatesTokenCount: usage.candidatesTokenCount,
    totalTokenCount: usage.promptTokenCount + usage.candidatesTokenCount + (usage.thoughtsTokenCount ?? 0),
    ...(usage.cachedContentTokenCount !== undefined
      ? { cachedContentTokenCount: usage.cachedContentTokenCount }
      : {}),
    ...(usage.thoughtsTokenCount !== undefined ? { thoughtsTokenCount: usage.thoughtsTokenCount } : {}),
  };
}

function streamTurn(res: ServerResponse, model: string, turn: GeminiTurn): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  turn.parts.forEach((part, index) => {
    const last = index === turn.parts.length - 1;
    chunk(res, {
      candidates: [
        { content: { role: 'model', parts: [part] }, index: 0, ...(last ? { finishReason: 'STOP' } : {}) },
      ],
      ...(last ? { usageMetadata: usageMetadata(turn.usage) } : {}),
      modelVersion: model,
    });
  });
  res.end();
}

function serveFault(res: ServerResponse, model: string, fault: GeminiFault, held: Set<ServerResponse>): void {
  if (fault.kind === 'status') {
    const status =
      fault.status === 429 ? 'RESOURCE_EXHAUSTED' : fault.status === 503 ? 'UNAVAILABLE' : 'INTERNAL';
    res.writeHead(fault.status, {
      'content-type': 'application/json',
      ...(fault.retryAfterS !== undefined ? { 'retry-after': String(fault.retryAfterS) } : {}),
    });
    res.end(JSON.stringify({ error: { code: fault.status, message: `fake ${fault.status}`, status } }));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  chunk(res, {
    candidates: [{ content: { role: 'model', parts: [{ text: 'I will' }] }, index: 0 }],
    modelVersion: model,
  });
  held.add(res);
}

/** Starts the fake on 127.0.0.1 with an ephemeral port. */
export async function startFakeGemini(
  initial: GeminiConversation | GeminiConversation[] = { turns: [] },
): Promise<FakeGemini> {
  const player = new ScriptPlayer<GeminiTurn, GeminiFault>();
  player.play(initial);
  const requests: RecordedGeminiRequest[] = [];
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
    const parsed = (typeof body === 'object' && body !== null ? body : {}) as GenerateBody;
    const model = modelOf(path);
    const record = (r: Pick<RecordedGeminiRequest, 'turn' | 'conversation' | 'served'>) =>
      requests.push({ method: req.method ?? '', path, body, ...r });

    if (req.method === 'POST' && path.includes(':countTokens')) {
      record({ turn: null, conversation: null, served: 'aux' });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ totalTokens: 100 }));
      return;
    }
    if (req.method === 'POST' && path.includes(':generateContent')) {
      // Side requests (routing, next-speaker and loop checks) ask for JSON: one object fits them all.
      record({ turn: null, conversation: null, served: 'aux' });
      const answer = {
        reasoning: 'fake',
        next_speaker: 'user',
        model_choice: 'flash',
        unproductive_state_confidence: 0,
      };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          candidates: [
            {
              content: { role: 'model', parts: [{ text: JSON.stringify(answer) }] },
              finishReason: 'STOP',
              index: 0,
            },
          ],
          usageMetadata: { promptTokenCount: 1, candidatesTokenCount: 1, totalTokenCount: 2 },
          modelVersion: model,
        }),
      );
      return;
    }
    if (req.method !== 'POST' || !path.includes(':streamGenerateContent')) {
      record({ turn: null, conversation: null, served: 'not_found' });
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 404, message: path, status: 'NOT_FOUND' } }));
      return;
    }
    const turnIndex = (parsed.contents ?? []).filter((c) => c.role === 'model').length;
    const pick = player.pick(JSON.stringify(parsed.contents ?? []), turnIndex);
    switch (pick.kind) {
      case 'unmatched':
        record({ turn: turnIndex, conversation: null, served: 'unmatched' });
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: { code: 400, message: 'no scripted conversation matches', status: 'INVALID_ARGUMENT' },
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
          parts: [{ text: 'Nothing more to do.' }],
          usage: { promptTokenCount: 1, candidatesTokenCount: 1 },
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
