// bench/lib/signin-turns.ts: S3's load and the raw argon2id loops take turns, every slice of load is
// followed by a wait for gatehouse's hashes, and S3 is read against the raw slices' mean (the whole
// measurement runs in CI's bench smoke run).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CpuSnapshot } from '../bench/lib/cpu-split.js';
import type { LoadFigures } from '../bench/lib/load.js';
import { measureSignInsInTurns, rawMean, SIGNIN_SLICE_SECONDS } from '../bench/lib/signin-turns.js';

function figures(seconds: number, rate: number, p99Ms: number): LoadFigures {
  return {
    requestsPerSecond: rate,
    successesPerSecond: rate,
    p50Ms: 300,
    p99Ms,
    non2xx: 0,
    errors: 0,
    timeouts: 0,
    statusCounts: { 201: rate * seconds },
    durationSeconds: seconds,
  };
}

function recorder() {
  const steps: string[] = [];
  let loads = 0;
  let raws = 0;
  let ticks = 0;
  const parts = {
    async load(seconds: number) {
      loads += 1;
      steps.push(`load ${seconds}`);
      return figures(seconds, 70 + loads * 2, 300 + loads);
    },
    async drain() {
      steps.push('drain');
      return 100 + steps.length;
    },
    async raw(seconds: number) {
      raws += 1;
      steps.push(`raw ${seconds}`);
      return { verifiesPerSecond: 80 + raws };
    },
    snapshot(): CpuSnapshot {
      ticks += 100;
      steps.push('snapshot');
      return { machineTicks: ticks, idleTicks: 0, threads: new Map() };
    },
  };
  return { steps, parts };
}

test('the raw loops and the load take turns, R S S R, with a drain after every slice of load', async () => {
  const { steps, parts } = recorder();
  const turns = await measureSignInsInTurns(parts, 10);
  assert.equal(turns.sliceSeconds, SIGNIN_SLICE_SECONDS);
  const s = SIGNIN_SLICE_SECONDS;
  const slice = [`snapshot`, `load ${s}`, 'snapshot', 'drain'];
  assert.deepEqual(steps, ['load 1', 'drain', `raw ${s}`, ...slice, ...slice, `raw ${s}`, `raw ${s}`, ...slice, ...slice, `raw ${s}`]);
  assert.deepEqual(
    turns.raw.map((slice) => slice.verifiesPerSecond),
    [81, 82, 83, 84],
  );
  assert.equal(rawMean(turns.raw), 82.5);
  assert.equal(turns.drainMs.length, 4);
  assert.equal(turns.intervals.length, 4);
  // The warm-up's figures are left out: the slices ran at 74, 76, 78 and 80 a second.
  assert.equal(turns.signIns.durationSeconds, 4 * s);
  assert.equal(turns.signIns.successesPerSecond, 77);
  assert.equal(turns.signIns.p99Ms, 305, "the highest slice's p99");
});

test('a short run still takes two slices a side, and without snapshots there is no interval', async () => {
  const { steps, parts } = recorder();
  const { snapshot: _unused, ...withoutSnapshot } = parts;
  const turns = await measureSignInsInTurns(withoutSnapshot, 2, 0);
  assert.deepEqual(steps, ['raw 3', 'load 3', 'drain', 'load 3', 'drain', 'raw 3']);
  assert.equal(turns.intervals.length, 0);
  assert.throws(() => rawMean([]), /no raw slices/);
});
