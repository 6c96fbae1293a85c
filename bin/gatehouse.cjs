#!/usr/bin/env node
// The gatehouse command (`npx gatehouse`, `npm start`, the image). Before it runs bin/launch.js, it
// starts libuv's thread pool and notes which threads that created, so that `serve` can give them a
// lower CPU priority than the event loop (GATEHOUSE_HASH_NICE, src/lib/thread-pool.ts): argon2id
// hashes run on them, and while sign-ins keep both cores busy, requests that need no hash would
// otherwise wait behind the hashes for a core.
//
// Why CommonJS: node reads an ES module entry through that pool, so by the time an ES module's first
// line runs the pool's threads exist and cannot be told apart from V8's own. A CommonJS entry runs
// first. The pool's threads are created, and waited for, inside the first call that queues work on
// it, so the threads in /proc/self/task after that call and not before it are the pool's.
'use strict';

const { readdirSync, stat } = require('node:fs');
const { availableParallelism } = require('node:os');

// libuv reads UV_THREADPOOL_SIZE when its pool starts (below), so it can still be set here. Unless it
// is set, the pool gets exactly one thread for each hash `serve` computes at once (one a core by
// default: src/services.ts, defaultHashConcurrency), so that hashes never take turns on a core with
// each other; `serve` then hands the pool one hash more, which waits in libuv's own queue and starts
// the moment a thread ends a hash (hashesHandedToPool says why). File-system and DNS work, rare once
// the server runs, waits behind at most that one hash.
if (!process.env.UV_THREADPOOL_SIZE) {
  const configured = Number.parseInt(process.env.GATEHOUSE_HASH_CONCURRENCY ?? '', 10);
  const hashes = configured > 0 ? configured : availableParallelism();
  process.env.UV_THREADPOOL_SIZE = String(Math.min(Math.max(hashes, 1), 1024));
}

const threads = () => readdirSync('/proc/self/task');
/** libuv's pool size: UV_THREADPOOL_SIZE, 4 without it, at most 1024 (libuv's own bounds). */
const poolSize = () => Math.min(Math.max(Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? '', 10) || 4, 1), 1024);

let before = null;
try {
  before = new Set(threads());
} catch {
  // Not Linux (no /proc): the pool runs at the event loop's priority.
}
stat(__filename, () => {});
if (before) {
  const pool = threads().filter((thread) => !before.has(thread));
  // Anything else than exactly the pool's threads (another thread started meanwhile) is not trusted.
  if (pool.length === poolSize()) globalThis[Symbol.for('gatehouse.threadPool')] = pool.map(Number);
}

// Before the command and its modules load, so that no full collection comes first (bin/tick-shape.cjs
// says why).
require('./tick-shape.cjs').keepTickEntryShape();

import('./launch.js');
