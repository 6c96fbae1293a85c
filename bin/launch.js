#!/usr/bin/env node
// Runs the gatehouse command, after bin/gatehouse.cjs (the command itself) has noted libuv's thread
// pool. A checkout needs no build step (`npm install && npm start` serves): this compiles what
// changed in src/ to dist/ (bin/compile.js, well under a second for all of it) and runs that. Where
// dist/ cannot be written (a read-only install whose dist/ is out of date), it runs the TypeScript
// sources through tsx instead, whose loader thread costs about 29 MB more.
// Memory: `npm start`, the image (deploy/Dockerfile) and the benchmark start node with
// MALLOC_ARENA_MAX=1, MALLOC_MMAP_THRESHOLD_=33554432, MALLOC_TRIM_THRESHOLD_=67108864 and
// --max-semi-space-size=8, which node and glibc read before any code runs, so they cannot be set
// here. Without the arena limit and the semi-space size an idle server keeps about 60 MB more: every
// libuv thread that ever ran an argon2id hash keeps its own malloc arena holding that hash's 19 MiB,
// and V8's young generation grows to 32 MB. Without the two thresholds, the one arena gives a hash's
// memory back when two hashes end together and faults it in again for the next: 8-12% fewer
// verifies a second (bench/RESULTS.md, fifth round). Start gatehouse the same way when you start it
// yourself.
import { compile } from './compile.js';

const UNWRITABLE = new Set(['EACCES', 'EPERM', 'EROFS']);
let entry = null;
try {
  entry = await compile();
} catch (error) {
  if (!UNWRITABLE.has(error?.code)) throw error;
}
if (entry) await import(entry);
else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
}
