// bench/lib/paired.ts: how S1's, S2's and S5's runs are cut into slices, and how the slices' figures are
// added back up (the whole measurement runs in CI's bench smoke run).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LoadFigures } from '../bench/lib/load.js';
import { combine, slicing } from '../bench/lib/paired.js';

function slice(seconds: number, rate: number, extra: Partial<LoadFigures> = {}): LoadFigures {
  return {
    requestsPerSecond: rate,
    successesPerSecond: rate,
    p50Ms: 1,
    p99Ms: 2,
    non2xx: 0,
    errors: 0,
    timeouts: 0,
    statusCounts: { 200: rate * seconds },
    durationSeconds: seconds,
    ...extra,
  };
}

test('slicing gives each side an even number of slices that add up to the duration', () => {
  for (const duration of [1, 2, 3, 5, 10, 11, 30]) {
    const { slices, sliceSeconds } = slicing(duration);
    assert.equal(slices % 2, 0, `${duration} s: ${slices} slices`);
    assert.ok(slices >= 2);
    assert.ok(Math.abs(slices * sliceSeconds - duration) < 1e-9);
    assert.ok(sliceSeconds <= 1.5 && sliceSeconds >= 0.5, `${duration} s: ${sliceSeconds} s slices`);
  }
  assert.deepEqual(slicing(10), { slices: 10, sliceSeconds: 1 });
});

test('combine weighs each slice by its time, sums the counts, and keeps the worst p99', () => {
  const whole = combine([
    slice(1, 1000, { p50Ms: 1, p99Ms: 4, non2xx: 2, statusCounts: { 200: 998, 503: 2 } }),
    slice(3, 2000, { p50Ms: 3, p99Ms: 9, errors: 1, timeouts: 1 }),
    slice(1, 500, { p50Ms: 2, p99Ms: 5 }),
  ]);
  assert.equal(whole.durationSeconds, 5);
  assert.equal(whole.requestsPerSecond, (1000 + 6000 + 500) / 5);
  assert.equal(whole.p50Ms, 2);
  assert.equal(whole.p99Ms, 9);
  assert.equal(whole.non2xx, 2);
  assert.equal(whole.errors, 1);
  assert.equal(whole.timeouts, 1);
  assert.deepEqual(whole.statusCounts, { 200: 998 + 6000 + 500, 503: 2 });
  assert.throws(() => combine([]));
});

test("combine can take the slices' median p99 instead (S5: one slow slice does not decide a ratio)", () => {
  const parts = [slice(1, 100, { p99Ms: 30 }), slice(1, 100, { p99Ms: 120 }), slice(1, 100, { p99Ms: 25 }), slice(1, 100, { p99Ms: 28 })];
  assert.equal(combine(parts, 'median').p99Ms, 28);
  assert.equal(combine(parts).p99Ms, 120);
  // The parts keep their order: the median is taken from a copy.
  assert.deepEqual(
    parts.map((part) => part.p99Ms),
    [30, 120, 25, 28],
  );
});
