/**
 * Issue 11, secret hygiene. The redaction itself (token shapes, configured
 * values), then the real CLI: orch runs with its own tokens and a database
 * password in its environment; a command agent (no sandbox) dumps its
 * environment into its worktree, prints what it was given and what it can
 * dig out of its parent's /proc. orch's secrets must be absent from the
 * agent's environment; every secret must be absent from everything orch
 * stored (logs, run logs, database, ledger) and from API responses.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { makeProject, type TempProject } from '../helpers/kit.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.ts';
import { openContext } from '../../src/runtime/context.ts';
import { createApp } from '../../src/http/app.ts';
import { isSecretName, redact, secretValues } from '../../src/runtime/secrets.ts';

const alnum = (n: number): string =>
  randomBytes(n * 2)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, n);

describe('the redaction', () => {
  it.each([
    ['Anthropic key', `sk-ant-api03-${alnum(40)}`],
    ['OpenAI key', `sk-proj-${alnum(40)}`],
    ['GitHub token', `ghp_${alnum(36)}`],
    ['GitHub OAuth token', `gho_${alnum(36)}`],
    ['GitHub fine-grained token', `github_pat_11ABCDEFG0_${alnum(50)}`],
    ['Slack bot token', `xoxb-1234567890-${alnum(24)}`],
    ['Telegram bot token', `123456789:${alnum(35)}`],
    ['AWS access key id', 'AKIAIOSFODNN7EXAMPLE'],
    ['Linear key', `lin_api_${alnum(40)}`],
    ['JWT', `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.${alnum(43)}`],
  ])('removes a %s wherever it appears, and keeps the text around it', (_what, token) => {
    expect(redact(`using ${token}, then "${token}"\n`)).toBe('using [REDACTED], then "[REDACTED]"\n');
  });

  it('keeps what is not secret in a header or URL', () => {
    const bearer = alnum(32);
    expect(redact(`Authorization: Bearer ${bearer}`)).toBe('Authorization: Bearer [REDACTED]');
    expect(redact('postgres://orch:hunter2hunter2@db.internal:5432/orch')).toBe(
      'postgres://orch:[REDACTED]@db.internal:5432/orch',
    );
    expect(redact('http://db.internal:5432/orch and https://example.com/a@b')).toBe(
      'http://db.internal:5432/orch and https://example.com/a@b',
    );
  });

  it('leaves ordinary text alone', () => {
    const text =
      'task-key T-1: risk-assessment-of-the-new-flow; ORCH_BUDGET_MAX_TOKENS=100000; 12:30:45; the bearer of news';
    expect(redact(text)).toBe(text);
  });

  it('takes the values of secret names and URL passwords from an environment, not other values', () => {
    const env = {
      ORCH_API_TOKEN: 'api-token-value',
      ORCH_GITHUB_TOKEN: 'github-token-value',
      ORCH_TELEGRAM_BOT_TOKEN: 'telegram-token-value',
      ORCH_WEBHOOK_SECRET: 'webhook-secret-value',
      ORCH_DATABASE_URL: 'postgres://orch:db-pass%21word@127.0.0.1/orch',
      PGPASSWORD: 'pg-password-value',
      ANTHROPIC_API_KEY: 'anthropic-key-value',
      ORCH_BUDGET_MAX_TOKENS: '1000000',
      ORCH_LOG_LEVEL: 'debug',
      SHORT_TOKEN: 'abc',
    };
    expect(new Set(secretValues(env))).toEqual(
      new Set([
        'api-token-value',
        'github-token-value',
        'telegram-token-value',
        'webhook-secret-value',
        'db-pass%21word',
        'db-pass!word',
        'pg-password-value',
        'anthropic-key-value',
      ]),
    );
    expect(isSecretName('ORCH_BUDGET_MAX_TOKENS')).toBe(false);
    expect(redact('connecting with db-pass!word and anthropic-key-value', secretValues(env))).toBe(
      'connecting with [REDACTED] and [REDACTED]',
    );
  });
});

/**
 * The agent: dumps its environment where orch commits it, prints every orch secret it can see
 * (none), what its role gave it, a token it made up, and its parent's (orch's) environment from
 * /proc, which an unsandboxed agent running as orch's user can read.
 */
const LEAKY_AGENT = `#!/bin/sh
env > agent-env.txt
echo "orch secrets in my env: [\${ORCH_GITHUB_TOKEN:-}] [\${ORCH_API_TOKEN:-}] [\${ORCH_TELEGRAM_BOT_TOKEN:-}] [\${ORCH_WEBHOOK_SECRET:-}] [\${ORCH_DATABASE_URL:-}]"
echo "role secret: $DEPLOY_TOKEN; passed key: $ANTHROPIC_API_KEY"
echo "made up: ghp_abcdefghijklmnopqrstuvwxyz0123456789"
tr '\\0' '\\n' < /proc/$PPID/environ | grep '^ORCH_'
echo "on stderr: $DEPLOY_TOKEN" >&2
printf '{"type":"result","subtype":"success","is_error":false,"result":"deployed with %s"}\\n' "$DEPLOY_TOKEN"
`;
const MADE_UP = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789';

interface Secrets {
  /** orch's own: must never reach the agent, nor anything stored. */
  orch: Record<string, string>;
  /** The role's env and a passed-through key: the agent has them; nothing orch stores may. */
  agent: Record<string, string>;
}

function makeSecrets(databaseUrl?: string): Secrets {
  return {
    orch: {
      ORCH_GITHUB_TOKEN: `ghp_${alnum(36)}`,
      ORCH_API_TOKEN: alnum(40),
      ORCH_TELEGRAM_BOT_TOKEN: `987654321:${alnum(35)}`,
      ORCH_WEBHOOK_SECRET: alnum(32),
      ...(databaseUrl ? { ORCH_DATABASE_URL: databaseUrl } : {}),
    },
    agent: { DEPLOY_TOKEN: `deploy-${alnum(24)}`, ANTHROPIC_API_KEY: `sk-ant-api03-${alnum(40)}` },
  };
}

/** Every file under `dir`, with its path relative to it. */
function filesUnder(dir: string, skip: (rel: string) => boolean = () => false): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      const rel = relative(dir, path);
      if (skip(rel)) continue;
      const st = statSync(path, { throwIfNoEntry: false });
      if (st?.isDirectory()) walk(path);
      else if (st?.isFile()) out.push([rel, readFileSync(path)]);
    }
  };
  walk(dir);
  return out;
}

/** Which of `values` occur in which of `files`, as "file: value" (empty when none does). */
function occurrences(files: [string, Buffer][], values: readonly string[]): string[] {
  return files.flatMap(([rel, bytes]) => values.filter((v) => bytes.includes(v)).map((v) => `${rel}: ${v}`));
}

let project: TempProject | undefined;
let database: TestDatabase | undefined;
afterEach(async () => {
  project?.cleanup();
  project = undefined;
  await database?.drop();
  database = undefined;
});

function leakyProject(secrets: Secrets): TempProject {
  project = makeProject({
    config: {
      agents: {
        default: { adapter: 'scripted' },
        developer: {
          adapter: 'command',
          command: ['sh', 'agent.sh'],
          env: { DEPLOY_TOKEN: secrets.agent.DEPLOY_TOKEN! },
          pass_env: ['ANTHROPIC_API_KEY'],
        },
      },
    },
    files: { 'agent.sh': LEAKY_AGENT },
  });
  return project;
}

/** Runs the task to its end with the secrets in orch's environment; what orch printed. */
function runLeaky(p: TempProject, secrets: Secrets): string {
  const env = { ...secrets.orch, ANTHROPIC_API_KEY: secrets.agent.ANTHROPIC_API_KEY! };
  if (secrets.orch.ORCH_DATABASE_URL) expect(p.orch(['init'], { env }).code).toBe(0);
  expect(p.orch(['task', 'add', 'Deploy the thing'], { env }).code).toBe(0);
  const r = p.orch(['run', '--until-idle'], { env });
  expect(r.code, r.stderr).toBe(0);
  const shown = JSON.parse(p.orch(['task', 'show', 'T-1', '--json'], { env }).stdout) as { status: string };
  expect(shown.status, r.stderr).toBe('done');
  return r.stdout + r.stderr;
}

/** The agent's environment (as it dumped it) holds what its role gave it and nothing of orch's. */
function expectCleanAgentEnv(p: TempProject, secrets: Secrets): void {
  const dumped = p.git(['show', 'main:agent-env.txt']);
  expect(dumped).toContain(`DEPLOY_TOKEN=${secrets.agent.DEPLOY_TOKEN}`);
  expect(dumped).toContain(`ANTHROPIC_API_KEY=${secrets.agent.ANTHROPIC_API_KEY}`);
  for (const [name, value] of Object.entries(secrets.orch)) {
    expect(dumped).not.toContain(value);
    expect(dumped).not.toContain(`${name}=`);
  }
  const url = secrets.orch.ORCH_DATABASE_URL;
  if (url) expect(dumped).not.toContain(new URL(url).password);
}

/** Every value that must be in nothing orch stored or served. */
function storedMustNotHold(secrets: Secrets): string[] {
  const url = secrets.orch.ORCH_DATABASE_URL;
  return [
    ...Object.values(secrets.orch),
    ...(url ? [new URL(url).password] : []),
    ...Object.values(secrets.agent),
    MADE_UP,
  ];
}

/** The API serves nothing secret: not what orch stored, nor a token a person typed into a task. */
async function expectCleanApi(p: TempProject, secrets: Secrets): Promise<void> {
  const typed = `ghp_${alnum(36)}`;
  const env = { ...p.env, ...secrets.orch };
  expect(p.orch(['task', 'add', `Rotate ${typed}`], { env }).code).toBe(0);
  const ctx = await openContext(p.dir, env);
  try {
    const token = secrets.orch.ORCH_API_TOKEN!;
    const api = createApp(ctx, { token, webDir: null });
    const get = async (path: string) =>
      (await api.app.request(path, { headers: { Authorization: `Bearer ${token}` } })).text();
    const runs = JSON.parse(await get('/api/runs?task=T-1')) as { id: number; role: string }[];
    const dev = runs.find((r) => r.role === 'developer')!;
    const bodies = await Promise.all(
      [
        '/api/tasks',
        '/api/tasks/T-1',
        '/api/tasks/T-1/events',
        '/api/runs?task=T-1',
        `/api/runs/${dev.id}`,
        `/api/runs/${dev.id}/log`,
        `/api/runs/${dev.id}/log?format=raw`,
        '/api/status',
      ].map(get),
    );
    const served: [string, Buffer][] = bodies.map((b, i) => [`response ${i}`, Buffer.from(b)]);
    expect(occurrences(served, [...storedMustNotHold(secrets), typed])).toEqual([]);
    expect(bodies[0]).toContain('Rotate [REDACTED]');
    expect(JSON.parse(bodies[4]!)).toMatchObject({ result_text: 'deployed with [REDACTED]' });
    api.pulse.close();
  } finally {
    await ctx.close();
  }
}

describe('an agent run with secrets in orch’s environment', () => {
  it('keeps orch’s tokens out of the agent, and every secret out of logs, the database and the API', async () => {
    const secrets = makeSecrets();
    const p = leakyProject(secrets);
    const printed = runLeaky(p, secrets);
    expectCleanAgentEnv(p, secrets);

    // Everything orch stored: its database, run logs, prompts, ledger. The worktrees hold the
    // agent's own files (its env dump) and are the agent's, not orch's; orch's own secrets must
    // not be there either, nor anywhere in the project.
    const state = join(p.dir, '.orch');
    const stored = filesUnder(state, (rel) => rel === 'worktrees');
    expect(stored.map(([rel]) => rel)).toEqual(expect.arrayContaining(['orch.db']));
    expect(occurrences(stored, storedMustNotHold(secrets))).toEqual([]);
    expect(occurrences(filesUnder(p.dir), Object.values(secrets.orch))).toEqual([]);
    expect(storedMustNotHold(secrets).filter((s) => printed.includes(s))).toEqual([]);

    // The run log says what happened, without the values.
    const log = stored.find(([rel]) => /logs\/T-1\/\d+-developer\.log$/.test(rel))![1].toString();
    expect(log).toContain('role secret: [REDACTED]; passed key: [REDACTED]');
    expect(log).toContain('made up: [REDACTED]');
    expect(log).toContain('[stderr] on stderr: [REDACTED]');
    expect(log).toContain('ORCH_GITHUB_TOKEN=[REDACTED]');
    expect(log).toContain('orch secrets in my env: [] [] [] [] []');

    await expectCleanApi(p, secrets);
  });

  it('keeps a PostgreSQL password out of the agent, the logs and every table', async () => {
    database = await createTestDatabase('orch_secrets');
    const url = new URL(database.url);
    url.password = `pg-${alnum(20)}`; // trust auth: accepted, and secret all the same
    const secrets = makeSecrets(url.toString());
    const p = leakyProject(secrets);
    const printed = runLeaky(p, secrets);
    expectCleanAgentEnv(p, secrets);

    const mustNot = storedMustNotHold(secrets);
    expect(
      occurrences(
        filesUnder(join(p.dir, '.orch'), (rel) => rel === 'worktrees'),
        mustNot,
      ),
    ).toEqual([]);
    expect(mustNot.filter((s) => printed.includes(s))).toEqual([]);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const tables = await client.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
      );
      expect(tables.rows.length).toBeGreaterThan(3);
      const rows: [string, Buffer][] = [];
      for (const { table_name } of tables.rows) {
        const all = await client.query<{ row: string }>(`SELECT t::text AS row FROM "${table_name}" t`);
        rows.push([table_name, Buffer.from(all.rows.map((r) => r.row).join('\n'))]);
      }
      expect(occurrences(rows, mustNot)).toEqual([]);
      expect(rows.find(([t]) => t === 'agent_runs')![1].toString()).toContain('deployed with [REDACTED]');
    } finally {
      await client.end();
    }
    await expectCleanApi(p, secrets);
  });
});
