/**
 * The dashboard's files: `web/dist` (built by `npm run build:web`, or on the
 * fly by `orch serve` when vite is installed), served as a single-page app.
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The dashboard's sources (`web/`) beside orch's own. */
export const WEB_ROOT = fileURLToPath(new URL('../../web', import.meta.url));
export const WEB_DIST = join(WEB_ROOT, 'dist');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
};

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
};

export const notBuiltPage = (dir: string): string =>
  `<!doctype html><meta charset="utf-8"><title>orch</title><body style="font:16px system-ui;margin:3em">` +
  `<h1>The dashboard is not built</h1><p>No <code>${dir}/index.html</code>. Run <code>npm run build:web</code> in orch's directory, then reload. ` +
  `The API is up: <a href="/api/status">/api/status</a>.</p>`;

/**
 * Answers a GET for a dashboard path: the file if it exists in `dir`, else
 * `index.html` (client-side routes), else a page that says how to build it.
 */
export function dashboardResponse(dir: string, urlPath: string): Response {
  const index = join(dir, 'index.html');
  if (!existsSync(index))
    return new Response(notBuiltPage(dir), {
      status: 503,
      headers: { 'Content-Type': TYPES['.html']!, ...SECURITY_HEADERS },
    });
  let rel: string;
  try {
    rel = normalize(decodeURIComponent(urlPath)).replace(/^([/\\])+/, '');
  } catch {
    rel = '';
  }
  const root = resolve(dir);
  const candidate = resolve(root, rel);
  const inside = candidate === root || candidate.startsWith(root + sep);
  const file = inside && rel && existsSync(candidate) && statSync(candidate).isFile() ? candidate : index;
  const hashed = file !== index && rel.startsWith('assets' + sep);
  return new Response(readFileSync(file), {
    headers: {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      // Vite puts a content hash in asset names, so they never change; the page itself always may.
      'Cache-Control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...SECURITY_HEADERS,
    },
  });
}

function newestMtimeMs(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtimeMs(join(path, entry)));
  return newest;
}

/** Whether `web/dist` is missing or older than the dashboard's sources. */
export function dashboardStale(webRoot = WEB_ROOT): boolean {
  const index = join(webRoot, 'dist', 'index.html');
  if (!existsSync(index)) return true;
  const built = statSync(index).mtimeMs;
  const sources = ['src', 'index.html', 'vite.config.ts'].map((p) => newestMtimeMs(join(webRoot, p)));
  return Math.max(...sources) > built;
}

export type BuildOutcome =
  { kind: 'fresh' } | { kind: 'built'; ms: number } | { kind: 'unavailable'; message: string };

/**
 * Builds `web/dist` with vite when it is missing or stale. The build goes to a
 * private directory that is renamed into place, so concurrent builds (two
 * `orch serve`s) never serve a half-written dashboard. Never throws.
 */
export async function ensureDashboard(webRoot = WEB_ROOT): Promise<BuildOutcome> {
  if (!dashboardStale(webRoot)) return { kind: 'fresh' };
  if (!existsSync(join(webRoot, 'index.html')))
    return { kind: 'unavailable', message: `no dashboard sources in ${webRoot}` };
  const started = Date.now();
  const tmp = join(webRoot, `.dist-${process.pid}-${started}`);
  try {
    const vite = await import('vite');
    await vite.build({
      root: webRoot,
      configFile: join(webRoot, 'vite.config.ts'),
      logLevel: 'error',
      build: { outDir: tmp, emptyOutDir: true },
    });
    const dist = join(webRoot, 'dist');
    const old = `${tmp}-old`;
    try {
      if (existsSync(dist)) renameSync(dist, old);
      renameSync(tmp, dist);
    } catch (error) {
      // Another process swapped its build in first: use that one.
      if (!existsSync(join(dist, 'index.html'))) throw error;
      rmSync(tmp, { recursive: true, force: true });
    }
    rmSync(old, { recursive: true, force: true });
    return { kind: 'built', ms: Date.now() - started };
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    return {
      kind: 'unavailable',
      message: `could not build the dashboard (${(error as Error).message.split('\n')[0]}); run \`npm run build:web\``,
    };
  }
}
