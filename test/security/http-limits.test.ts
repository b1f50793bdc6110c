/**
 * Request bodies are bounded: one over MAX_BODY_BYTES gets 413 with a JSON
 * error that names the limit, whether its size is declared (Content-Length)
 * or only streamed, in-process and on a real socket; nothing is stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { apiFixture, type ApiFixture } from '../http/http-kit.ts';
import { MAX_BODY_BYTES } from '../../src/http/app.ts';
import { startServer, type RunningServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/runtime/logger.ts';

let f: ApiFixture;
let server: RunningServer;
beforeAll(async () => {
  f = await apiFixture();
  server = await startServer(f.ctx, { port: 0, webDir: null, log: createLogger({ level: 'error' }) });
});
afterAll(async () => {
  await server.close();
  await f.close();
});

/** A task body of exactly `bytes` bytes of valid JSON. */
const taskBody = (bytes: number): string => {
  const overhead = JSON.stringify({ title: 'big', description: '' }).length;
  return JSON.stringify({ title: 'big', description: 'd'.repeat(bytes - overhead) });
};

const expectTooLarge = async (res: Response): Promise<void> => {
  expect(res.status).toBe(413);
  expect(await res.json()).toEqual({
    error: {
      code: 'payload_too_large',
      message: `request body over the limit of ${MAX_BODY_BYTES} bytes (MAX_BODY_BYTES)`,
    },
  });
};

const taskCount = async (): Promise<number> => (await f.ctx.store.listTasks()).length;

/** POSTs over a real socket with Node's http client; `chunked` sends no Content-Length. */
function post(path: string, body: string, chunked: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, server.url);
    // A connection of its own: the server closes one whose body it did not read.
    const req = request(url, {
      agent: false,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(chunked ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
      },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    // The server may answer and close before the whole body is sent; the answer is what counts.
    req.on('error', reject);
    const bytes = Buffer.from(body);
    let at = 0;
    const pump = (): void => {
      while (at < bytes.length) {
        const more = req.write(bytes.subarray(at, (at += 64 * 1024)));
        if (!more) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

describe('request body limit', () => {
  it('413 for a declared over-limit body, and nothing stored', async () => {
    const before = await taskCount();
    const body = taskBody(MAX_BODY_BYTES + 1);
    expect(Buffer.byteLength(body)).toBe(MAX_BODY_BYTES + 1);
    await expectTooLarge(
      await f.post('/api/tasks', body, { 'Content-Length': String(Buffer.byteLength(body)) }),
    );
    expect(await taskCount()).toBe(before);
  });

  it('413 for a streamed over-limit body with no Content-Length, and nothing stored', async () => {
    const before = await taskCount();
    const bytes = new TextEncoder().encode(taskBody(MAX_BODY_BYTES + 10_000));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < bytes.length; at += 16 * 1024)
          controller.enqueue(bytes.subarray(at, at + 16 * 1024));
        controller.close();
      },
    });
    const res = await f.api.app.request('/api/tasks', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    await expectTooLarge(res);
    expect(await taskCount()).toBe(before);
  });

  it('a body under the limit still works (a 50 000-character description)', async () => {
    const res = await f.post('/api/tasks', { title: 'long but fine', description: 'é'.repeat(50_000) });
    expect(res.status, await res.clone().text()).toBe(201);
  });

  it('on a real socket too, declared or chunked', async () => {
    const before = await taskCount();
    for (const chunked of [false, true]) {
      const res = await post('/api/tasks', taskBody(MAX_BODY_BYTES * 2), chunked);
      expect(res.status, `chunked=${chunked}`).toBe(413);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'payload_too_large' } });
    }
    expect(await taskCount()).toBe(before);
  });
});
