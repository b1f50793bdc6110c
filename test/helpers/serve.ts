/** A real `orch serve` on a free port, for the tests that talk to its HTTP side (the dashboard, webhooks). */
import { processesIn, waitFor, type TempProject } from './kit.ts';

export interface Served {
  url: string;
  /** Everything the server printed so far. */
  output(): string;
  /** SIGTERM, then its exit code once it exited (0: the scheduler and the server stopped cleanly). */
  stop(): Promise<number | null>;
}

/** Starts `orch serve --port 0` in the project (with `env` added to its environment) and waits for its address. */
export async function serve(project: TempProject, env: Record<string, string> = {}): Promise<Served> {
  const server = project.spawnOrch(['serve', '--port', '0'], { env });
  let out = '';
  server.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  server.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const url = await waitFor(
    () => {
      if (server.exitCode !== null) throw new Error(`orch serve exited (${server.exitCode}):\n${out}`);
      return /orch serve: (http:\/\/\S+)/.exec(out)?.[1];
    },
    90_000,
    'orch serve to start',
  );
  return {
    url,
    output: () => out,
    async stop() {
      let code = server.exitCode;
      if (code === null) {
        const exited = new Promise<number | null>((r) => server.once('exit', (c) => r(c)));
        server.kill('SIGTERM');
        code = await exited;
      }
      // No agent outlives the server.
      await waitFor(() => processesIn(project.dir).length === 0, 10_000, 'agents to exit');
      return code;
    },
  };
}
