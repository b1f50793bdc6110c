/** Puts the app on a socket (Node's http server) and takes it down cleanly. */
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { OrchContext } from '../runtime/context.ts';
import type { Logger } from '../runtime/logger.ts';
import { OrchError } from '../errors.ts';
import { apiTokenFrom, checkBindable } from './auth.ts';
import { createApp, type AppOptions } from './app.ts';
import { Pulse } from './events.ts';

export interface ServerOptions extends Omit<AppOptions, 'token' | 'pulse'> {
  /** Address to bind. Default 127.0.0.1. */
  host?: string;
  /** Port; 0 picks a free one. Default 7700. */
  port?: number;
  log: Logger;
}

export interface RunningServer {
  /** `http://HOST:PORT`, with the port actually bound. */
  url: string;
  port: number;
  /** Wakes event streams now (progress seen by a scheduler in this process). */
  notify(): void;
  /** Ends event streams and open connections, then stops listening. */
  close(): Promise<void>;
}

/** Starts serving. Refuses a non-loopback address without `ORCH_API_TOKEN`. */
export async function startServer(ctx: OrchContext, opts: ServerOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const token = apiTokenFrom(ctx.env);
  checkBindable(host, token);
  const pulse = new Pulse();
  const { app } = createApp(ctx, { ...opts, token, pulse });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: host, port: opts.port ?? 7700 }, () =>
      resolve(s as Server),
    ) as Server;
    s.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new OrchError(
          error.code === 'EADDRINUSE' ? 'invalid_argument' : 'config_invalid',
          error.code === 'EADDRINUSE'
            ? `port ${opts.port} on ${host} is in use: choose another with --port`
            : `cannot listen on ${host}:${opts.port}: ${error.message}`,
          { cause: error },
        ),
      ),
    );
  });
  const { port } = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${shown}:${port}`,
    port,
    notify: () => pulse.notify(),
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        pulse.close();
        server.close(() => resolve());
        // Event streams end at their next poll; idle keep-alive sockets are closed now.
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 1_000).unref();
      })),
  };
}
