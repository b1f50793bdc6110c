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
  | StatusFault
  /** Sends a first text chunk, then holds the connection open. */
  | StallFault;

export type GeminiConversation = Conversation<GeminiTurn, GeminiFault>;

export type RecordedGeminiRequest = RecordedCall;

/** `url` is `http://127.0.0.1:<port>`, for GOOGLE_GEMINI_BASE_URL. */
export type FakeGemini = FakeServer<GeminiTurn, GeminiFault, RecordedGeminiRequest>;

interface GenerateBody {
  contents?: { role?: string }[];
}

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

function stall(res: ServerResponse, model: string): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  chunk(res, {
    candidates: [{ content: { role: 'model', parts: [{ text: 'I will' }] }, index: 0 }],
    modelVersion: model,
  });
}

/** Starts the fake on 127.0.0.1 with an ephemeral port. */
export function startFakeGemini(
  initial: GeminiConversation | GeminiConversation[] = { turns: [] },
): Promise<FakeGemini> {
  return startFakeServer<GeminiTurn, GeminiFault, GenerateBody>(
    {
      model: (path) => modelOf(path),
      aside({ method, path, model }, res) {
        if (method === 'POST' && path.includes(':countTokens')) {
          sendJson(res, 200, { totalTokens: 100 });
          return 'aux';
        }
        if (method === 'POST' && path.includes(':generateContent')) {
          // Side requests (routing, next-speaker and loop checks) ask for JSON: one object fits them all.
          const answer = {
            reasoning: 'fake',
            next_speaker: 'user',
            model_choice: 'flash',
            unproductive_state_confidence: 0,
          };
          sendJson(res, 200, {
            candidates: [
              {
                content: { role: 'model', parts: [{ text: JSON.stringify(answer) }] },
                finishReason: 'STOP',
                index: 0,
              },
            ],
            usageMetadata: { promptTokenCount: 1, candidatesTokenCount: 1, totalTokenCount: 2 },
            modelVersion: model,
          });
          return 'aux';
        }
        if (method !== 'POST' || !path.includes(':streamGenerateContent')) {
          sendJson(res, 404, { error: { code: 404, message: path, status: 'NOT_FOUND' } });
          return 'not_found';
        }
        return undefined;
      },
      turnOf: (parsed) => (parsed.contents ?? []).filter((c) => c.role === 'model').length,
      matchText: (parsed) => JSON.stringify(parsed.contents ?? []),
      unmatched: (res) =>
        sendJson(res, 400, {
          error: { code: 400, message: 'no scripted conversation matches', status: 'INVALID_ARGUMENT' },
        }),
      statusBody(code) {
        const status = code === 429 ? 'RESOURCE_EXHAUSTED' : code === 503 ? 'UNAVAILABLE' : 'INTERNAL';
        return { error: { code, message: `fake ${code}`, status } };
      },
      stall,
      stream: (res, model, turn) => streamTurn(res, model, turn),
      beyond: {
        parts: [{ text: 'Nothing more to do.' }],
        usage: { promptTokenCount: 1, candidatesTokenCount: 1 },
      },
    },
    initial,
  );
}
