// The import worker's concurrency, with a stand-in imports service: it works on up to
// GATEHOUSE_IMPORT_CONCURRENCY chunks at once, never more, and drains every chunk.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ImportsService } from '../src/modules/imports/imports.service.js';
import { createImportWorker } from '../src/modules/imports/imports.worker.js';

function standInImports(chunks: number) {
  let next = 0;
  let inFlight = 0;
  let mostInFlight = 0;
  const processed: number[] = [];
  const imports = {
    async claimNext() {
      if (next >= chunks) return null;
      next += 1;
      return { jobId: 'job', seq: next };
    },
    async processChunk(_jobId: string, seq: number) {
      inFlight += 1;
      mostInFlight = Math.max(mostInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 20));
      inFlight -= 1;
      processed.push(seq);
      return true;
    },
  } as unknown as ImportsService;
  return { imports, processed, mostInFlight: () => mostInFlight };
}

describe('import worker concurrency', () => {
  for (const concurrency of [1, 3]) {
    test(`with concurrency ${concurrency}, drain processes every chunk, at most ${concurrency} at once`, async () => {
      const { imports, processed, mostInFlight } = standInImports(10);
      const worker = createImportWorker({ imports, workQueue: null, logger: { warn() {} }, concurrency });
      assert.equal(await worker.drain(), 10);
      assert.deepEqual(
        [...processed].sort((a, b) => a - b),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      );
      assert.equal(mostInFlight(), concurrency);
    });
  }

  test('a started worker works with all its lanes, and stop() waits for them', async () => {
    const { imports, processed, mostInFlight } = standInImports(9);
    const worker = createImportWorker({ imports, workQueue: null, logger: { warn() {} }, concurrency: 3, pollMilliseconds: 10 });
    worker.start();
    const deadline = Date.now() + 10_000;
    while (processed.length < 9) {
      assert.ok(Date.now() < deadline, `processed ${processed.length} of 9`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await worker.stop();
    assert.equal(mostInFlight(), 3);
  });
});
