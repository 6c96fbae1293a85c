// bench/lib/cpu-split.ts: reading /proc, and how S3's CPU time is split between the hashing threads,
// the event loop, the server's other threads, the rest of the machine and idle.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { type CpuSnapshot, cpuSplit, parseProcStat, parseThreadStat, snapshot } from '../bench/lib/cpu-split.js';
import type { LoadFigures } from '../bench/lib/load.js';
import { describeSplit } from '../bench/lib/report.js';

// A thread name may hold spaces and parentheses: the fields are counted after the last ')'.
const STAT = '4242 (node) (x) y) S 1 4242 4242 0 -1 4194368 500 0 0 0 731 69 0 0 30 10 11 0 12345 1000000 2000';

test('a thread stat line: user plus system ticks, and the nice value', () => {
  assert.deepEqual(parseThreadStat(STAT), { ticks: 800, nice: 10 });
  assert.throws(() => parseThreadStat('4242 (node) S 1'), /not a stat line/);
});

test("/proc/stat's cpu line: all ticks up to steal, idle with iowait", () => {
  const text = 'cpu  100 20 30 400 5 6 7 8 9 10\ncpu0 50 10 15 200 2 3 3 4 4 5\n';
  assert.deepEqual(parseProcStat(text), { machineTicks: 576, idleTicks: 405 });
  assert.throws(() => parseProcStat('intr 1 2 3\n'), /no cpu line/);
});

function snap(machineTicks: number, idleTicks: number, threads: [number, number, number][]): CpuSnapshot {
  return { machineTicks, idleTicks, threads: new Map(threads.map(([tid, ticks, nice]) => [tid, { ticks, nice }])) };
}

test('the split: the event loop is the thread named by the pid, niced threads hash, the rest is elsewhere', () => {
  const before = snap(10_000, 2_000, [
    [100, 50, 0],
    [101, 1_000, 10],
    [102, 2_000, 10],
    [103, 10, 0],
  ]);
  // 400 ticks pass: 160 + 150 hashing, 40 event loop, 10 other thread (one new), 12 idle, 28 elsewhere.
  const after = snap(10_400, 2_012, [
    [100, 90, 0],
    [101, 1_160, 10],
    [102, 2_150, 10],
    [103, 15, 0],
    [104, 5, 0],
  ]);
  const split = cpuSplit(100, [[before, after]]);
  assert.equal(split.hashing, 310 / 400);
  assert.equal(split.eventLoop, 40 / 400);
  assert.equal(split.otherThreads, 10 / 400);
  assert.equal(split.idle, 12 / 400);
  assert.equal(split.elsewhere, 28 / 400);
  assert.equal(split.eventLoopSeconds, 0.4);
  assert.throws(() => cpuSplit(100, [[after, after]]), /no machine time/);
});

test('the split over several intervals adds their ticks up, and leaves out what ran between them', () => {
  const first = [
    snap(10_000, 2_000, [
      [100, 50, 0],
      [101, 1_000, 10],
    ]),
    snap(10_200, 2_010, [
      [100, 70, 0],
      [101, 1_170, 10],
    ]),
  ] as const;
  // Between the intervals the event loop ran 500 ticks and the machine 5,000 (the raw slices): not counted.
  const second = [
    snap(15_200, 2_500, [
      [100, 570, 0],
      [101, 1_170, 10],
    ]),
    snap(15_400, 2_520, [
      [100, 600, 0],
      [101, 1_310, 10],
    ]),
  ] as const;
  const split = cpuSplit(100, [first, second]);
  assert.equal(split.hashing, (170 + 140) / 400);
  assert.equal(split.eventLoop, (20 + 30) / 400);
  assert.equal(split.idle, 30 / 400);
  assert.equal(split.elsewhere, 10 / 400);
  assert.equal(split.eventLoopSeconds, 0.5);
  const alone = cpuSplit(100, [first]);
  assert.equal(alone.hashing, 170 / 200);
  assert.equal(alone.eventLoop, 20 / 200);
  assert.throws(() => cpuSplit(100, []), /no machine time/);
});

test('the report line gives the event loop per response, and says when hashing cannot be told apart', () => {
  const s3 = { requestsPerSecond: 100, durationSeconds: 10 } as LoadFigures;
  const split = { hashing: 0.843, eventLoop: 0.09, otherThreads: 0.022, elsewhere: 0.021, idle: 0.024, eventLoopSeconds: 1.8 };
  assert.equal(
    describeSplit(split, s3),
    "During S3 the machine's CPU time went to gatehouse's hashing threads 84.3%, its event loop 9.0% (1.80 ms a response), its other threads 2.2%, the rest of the machine (the runner, the database) 2.1%, idle 2.4%.",
  );
  assert.match(describeSplit({ ...split, hashing: 0 }, s3), /could not be told from its other threads/);
});

test('a live snapshot of this process counts the event loop it keeps busy', { skip: !existsSync('/proc/stat') && 'no /proc here' }, () => {
  const before = snapshot(process.pid);
  assert.ok(before.threads.has(process.pid), 'the main thread is listed');
  const started = process.cpuUsage();
  // 200 ms of this thread's CPU time, however long the shared machine takes to give it.
  while (process.cpuUsage(started).user < 200_000) Math.sqrt(Math.random());
  const split = cpuSplit(process.pid, [[before, snapshot(process.pid)]]);
  assert.ok(split.eventLoopSeconds >= 0.15, `event loop ${split.eventLoopSeconds} s`);
  assert.ok(split.eventLoop > 0 && split.eventLoop <= 1);
});

test('a snapshot of a process that has exited says so', { skip: !existsSync('/proc/stat') && 'no /proc here' }, () => {
  const exited = spawnSync(process.execPath, ['-e', '0']);
  assert.equal(exited.status, 0);
  assert.throws(() => snapshot(exited.pid), /process \d+ is not running/);
});
