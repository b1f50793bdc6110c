/**
 * The plumbing every fake model server shares: an HTTP server on 127.0.0.1
 * with an ephemeral port, request bodies read and parsed, every request
 * recorded, the script (see script-player.ts) picked by marker, faults served
 * (an HTTP error, or a stall that holds the connection open until the fake
 * closes), and a clean close. A vendor's fake keeps only its wire format:
 * which paths it answers aside, how it counts the turn asked for, and how it
 * streams a turn, an error body and a stall.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ScriptPlayer, type Conversation } from './script-player.ts';

/**
 * An HTTP error; `retryAfterS` sets the retry-after header; `headers` and `body` replace the
 * vendor's own (a function is called when the fault is served, for times relative to it).
 */
export interface StatusFault {
  kind: 'status';
  status: number;
  retryAfterS?: number;
  headers?: Record<string, string> | (() => Record<string, string>);
  body?: unknown;
}

/** A reply that starts and then holds the connection open. */
export interface StallFault {
  kind: 'stall';
}

export type FakeFault = StatusFault | StallFault;

export type Served = 'turn' | 'fault' | 'beyond' | 'aux' | 'unmatched' | 'not_found';

/** What a fake saw, for assertions and for learning what a CLI asks for. */
export interface RecordedCall {
  method: string;
  path: string;
  /** The turn a scripted request asked for; null for other endpoints. */
  turn: number | null;
  /** Index of the scripted conversation it matched. */
  conversation: number | null;
  served: Served;
  body: unknown;
  /** When it arrived (epoch ms). */
  at: number;
}

export interface FakeServer<Turn, Fault, Recorded> {
  /** The fake's base URL on loopback. */
  url: string;
  requests: Recorded[];
  /** Replaces the script and forgets served faults and requests. */
  play(script: Conversation<Turn, Fault> | Conversation<Turn, Fault>[]): void;
  close(): Promise<void>;
}

/** One request as the vendor sees it. */
export interface FakeCall<Body> {
  method: string;
  path: string;
  /** The JSON body, or the raw text when it is not JSON. */
  body: unknown;
  /** The body as an object (empty when it is not one). */
  parsed: Body;
  /** The model to answer as. */
  model: string;
}

export interface FakeVendor<Turn, Body, Extra> {
  /** Appended to `http://127.0.0.1:<port>` for the fake's url. */
  urlPath?: string;
  /** The model to answer as. */
  model(path: string, parsed: Body): string;
  /** Vendor fields of the request's record. */
  recordExtra?(parsed: Body): Extra;
  /** Answers a request outside the script (an aux endpoint, or not found); undefined for a scripted one. */
  aside(call: FakeCall<Body>, res: ServerResponse): 'aux' | 'not_found' | undefined;
  /** The turn a scripted request asks for. */
  turnOf(parsed: Body): number;
  /** The text the script's markers are searched in. */
  matchText(parsed: Body): string;
  /** The reply to a request no conversation matches. */
  unmatched(res: ServerResponse): void;
  /** The error body of a status fault. */
  statusBody(status: number): unknown;
  /** Starts a reply that never finishes. */
  stall(res: ServerResponse, model: string): void;
  /** A turn's reply. */
  stream(res: ServerResponse, model: string, turn: Turn, turnIndex: number): void;
  /** The reply past the last scripted turn: plain text, which ends the conversation. */
  beyond: Turn;
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Starts a vendor's fake on 127.0.0.1 with an ephemeral port. */
export async function startFakeServer<
  Turn extends { faults?: Fault[] },
  Fault extends FakeFault,
  Body,
  Extra extends object = object,
>(
  vendor: FakeVendor<Turn, Body, Extra>,
  initial: Conversation<Turn, Fault> | Conversation<Turn, Fault>[],
): Promise<FakeServer<Turn, Fault, RecordedCall & Extra>> {
  const player = new ScriptPlayer<Turn, Fault>();
  player.play(initial);
  const requests: (RecordedCall & Extra)[] = [];
  const held = new Set<ServerResponse>();

  const serveFault = (res: ServerResponse, model: string, fault: Fault): void => {
    if (fault.kind === 'status') {
      const headers: Record<string, string> = {
        ...(fault.retryAfterS !== undefined ? { 'retry-after': String(fault.retryAfterS) } : {}),
        ...(typeof fault.headers === 'function' ? fault.headers() : fault.headers),
      };
      sendJson(res, fault.status, fault.body ?? vendor.statusBody(fault.status), headers);
      return;
    }
    vendor.stall(res, model);
    // …and nothing more: the connection stays open until the fake closes.
    held.add(res);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const text = await readBody(req);
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      /* kept as text */
    }
    const path = req.url ?? '/';
    const parsed = (typeof body === 'object' && body !== null ? body : {}) as Body;
    const call: FakeCall<Body> = {
      method: req.method ?? '',
      path,
      body,
      parsed,
      model: vendor.model(path, parsed),
    };
    const at = Date.now();
    const record = (r: Pick<RecordedCall, 'turn' | 'conversation' | 'served'>) =>
      requests.push({
        method: call.method,
        path,
        ...(vendor.recordExtra?.(parsed) as Extra),
        body,
        at,
        ...r,
      });

    const aside = vendor.aside(call, res);
    if (aside) {
      record({ turn: null, conversation: null, served: aside });
      return;
    }
    const turnIndex = vendor.turnOf(parsed);
    const pick = player.pick(vendor.matchText(parsed), turnIndex);
    switch (pick.kind) {
      case 'unmatched':
        record({ turn: turnIndex, conversation: null, served: 'unmatched' });
        vendor.unmatched(res);
        return;
      case 'fault':
        record({ turn: turnIndex, conversation: pick.conversation, served: 'fault' });
        serveFault(res, call.model, pick.fault);
        return;
      case 'beyond':
        record({ turn: turnIndex, conversation: pick.conversation, served: 'beyond' });
        vendor.stream(res, call.model, vendor.beyond, turnIndex);
        return;
      case 'turn':
        record({ turn: turnIndex, conversation: pick.conversation, served: 'turn' });
        vendor.stream(res, call.model, pick.turn, turnIndex);
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
    url: `http://127.0.0.1:${port}${vendor.urlPath ?? ''}`,
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
