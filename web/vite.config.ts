/** Builds the dashboard into web/dist (`npm run build:web`); `orch serve` serves it. */
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // Small enough to read in the browser's devtools.
    sourcemap: false,
    chunkSizeWarningLimit: 200,
  },
  server: {
    // `npx vite web` during development: the API of an `orch serve` on the default port.
    proxy: { '/api': 'http://127.0.0.1:7700', '/metrics': 'http://127.0.0.1:7700' },
  },
});
