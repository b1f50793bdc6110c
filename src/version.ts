/** orch's version: the one in package.json, beside `src/` in a checkout and beside `dist/` in the package. */
import { readFileSync } from 'node:fs';

export const ORCH_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
