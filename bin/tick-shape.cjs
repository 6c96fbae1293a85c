// Keeps one of process.nextTick's queue entries alive for as long as the process runs.
//
// Node 20 builds each entry as an object literal with two computed (symbol) keys. For such a key V8
// remembers one shape (map), held weakly; when a full garbage collection runs while no entry is
// alive, the shape is collected, the next entry gets a new one, and V8 marks the key's site
// megamorphic for good (it has no polymorphic state). From then on every nextTick builds its entry
// through V8's runtime instead of optimized code: about ten nextTicks an HTTP request, 15-20% of the
// CPU time of a Bearer `GET /v1/users/me` (bench/RESULTS.md, eleventh round). Whether it happened
// depended on when the collector ran, so two processes of the same build differed by that much.
// One entry kept here keeps the shape, and with it the remembered one, alive.
'use strict';

const { executionAsyncResource } = require('node:async_hooks');

const KEPT = Symbol.for('gatehouse.tickEntry');

/** Inside a nextTick callback, the running entry is the current async resource. Once per process. */
function keepTickEntryShape() {
  if (KEPT in globalThis) return;
  globalThis[KEPT] = null;
  process.nextTick(() => {
    globalThis[KEPT] = executionAsyncResource();
  });
}

module.exports = { keepTickEntryShape, KEPT };
