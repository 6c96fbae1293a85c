// bin/tick-shape.cjs keeps one of process.nextTick's queue entries alive so that the entries' shape
// outlives full garbage collections (the file says why; bench/RESULTS.md, eleventh round, measures it).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

const TICK_SHAPE = new URL('../bin/tick-shape.cjs', import.meta.url).pathname;

/** Runs `body` in a fresh node with V8's test functions (`%HaveSameMap`) and `gc()`; returns its JSON output. */
function inFreshNode(body: string): unknown {
  const script = `
    const { executionAsyncResource } = require('node:async_hooks');
    const { keepTickEntryShape, KEPT } = require(${JSON.stringify(TICK_SHAPE)});
    ${body}`;
  const output = execFileSync(process.execPath, ['--allow-natives-syntax', '--expose-gc', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return JSON.parse(output);
}

test('the kept entry has the shape of every later nextTick entry, across full collections', () => {
  const result = inFreshNode(`
    keepTickEntryShape();
    const noop = () => {};
    setImmediate(() => {
      for (let i = 0; i < 10000; i++) process.nextTick(noop, i);
      setImmediate(() => {
        // No entry is queued or running now: only the kept one is alive.
        gc();
        gc();
        const kept = globalThis[KEPT];
        const shapes = [];
        process.nextTick(() => shapes.push(%HaveSameMap(kept, executionAsyncResource())));
        process.nextTick((a, b, c) => shapes.push(%HaveSameMap(kept, executionAsyncResource())), 1, 'two', {});
        keepTickEntryShape(); // a second call keeps the first entry
        setImmediate(() => process.stdout.write(JSON.stringify({
          sameEntry: globalThis[KEPT] === kept,
          keys: Object.keys(kept),
          symbols: Object.getOwnPropertySymbols(kept).map(String),
          shapes,
        })));
      });
    });`);
  assert.deepEqual(result, {
    sameEntry: true,
    keys: ['callback', 'args'],
    symbols: ['Symbol(async_id_symbol)', 'Symbol(trigger_async_id_symbol)'],
    shapes: [true, true],
  });
});
