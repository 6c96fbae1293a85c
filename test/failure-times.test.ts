// failure-times.ts: a blocked sign-in (429) waits as long as one of the recent failed sign-ins took,
// picked at random, so that the 429s' times spread as the 401s' do.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentFailureTimes } from '../src/modules/sessions/failure-times.js';

/** `count` evenly spread values in (0, 1), each in the middle of its step: a random source that covers every entry alike. */
function evenly(count: number): () => number {
  let i = 0;
  return () => ((i++ % count) + 0.5) / count;
}

test('nothing to pick before the first failure; negative and NaN times are not kept', () => {
  const times = new RecentFailureTimes(4);
  assert.equal(times.pick(), null);
  times.add(-1);
  times.add(Number.NaN);
  assert.equal(times.pick(), null);
  times.add(12.5);
  assert.equal(times.pick(), 12.5);
});

test('keeps only the last `size` times, each picked alike', () => {
  const times = new RecentFailureTimes(4);
  for (let ms = 1; ms <= 10; ms += 1) times.add(ms);
  const random = evenly(4);
  const picked = Array.from({ length: 8 }, () => times.pick(random));
  assert.deepEqual(
    [...new Set(picked)].sort((a, b) => (a ?? 0) - (b ?? 0)),
    [7, 8, 9, 10],
  );
  for (const ms of [7, 8, 9, 10]) assert.equal(picked.filter((each) => each === ms).length, 2);
  assert.equal(
    times.pick(() => 0.999_999),
    times.pick(() => 0.999_999),
    'the last index is in range',
  );
});

test("skewed failure times: the picks' median is the failures' median, not their mean", () => {
  // 90% of failures take 40 ms, a tail of 10% takes 100 ms: median 40, mean 46.
  const times = new RecentFailureTimes(100);
  for (let i = 0; i < 100; i += 1) times.add(i % 10 === 9 ? 100 : 40);
  const random = evenly(100);
  const picks = Array.from({ length: 1000 }, () => times.pick(random) as number).sort((a, b) => a - b);
  assert.equal(picks[500], 40);
  assert.equal(picks.filter((ms) => ms === 100).length, 100, 'the tail is kept in its share');
});
