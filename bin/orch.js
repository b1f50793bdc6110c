#!/usr/bin/env node
// Runs the TypeScript sources with Node 24's type stripping (a checkout needs no build step).
import '../src/cli/main.ts';
