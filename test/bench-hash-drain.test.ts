// bench/lib/hash-drain.ts: the raw argon2id rate after S3 is measured only once gatehouse has finished
// the hashes the load left it (RESULTS, fifteenth round).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { hashesInFlight, waitForHashesToFinish } from '../bench/lib/hash-drain.js';
import { buildTestApp } from './helpers/app.js';

const metrics = (active: number, queued: number) =>
  [
    '# HELP gatehouse_password_hash_active Password hashes being computed now.',
    '# TYPE gatehouse_password_hash_active gauge',
    `gatehouse_password_hash_active ${active}`,
    `gatehouse_password_hash_active_total_lookalike 99`,
    `gatehouse_password_hash_queue_depth ${queued}`,
  ].join('\n');

test('hashesInFlight adds the running and the waiting hashes', () => {
  assert.equal(hashesInFlight(metrics(3, 21)), 24);
  assert.equal(hashesInFlight(metrics(0, 0)), 0);
  assert.throws(() => hashesInFlight('gatehouse_password_hash_active 1\n'), /gatehouse_password_hash_queue_depth/);
});

test("hashesInFlight reads gatehouse's own /metrics", async () => {
  const app = await buildTestApp('sqlite');
  try {
    const response = await app.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(hashesInFlight(response.body), 0);
  } finally {
    await app.close();
  }
});

test('waitForHashesToFinish returns once nothing is running or waiting', async () => {
  const left: [number, number][] = [
    [3, 20],
    [3, 9],
    [1, 0],
    [0, 0],
  ];
  let asked = 0;
  const server = createServer((_request, response) => {
    const [active, queued] = left[Math.min(asked, left.length - 1)] ?? [0, 0];
    asked += 1;
    response.end(metrics(active, queued));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await waitForHashesToFinish(url);
    assert.equal(asked, 4);
    left.splice(0, left.length, [1, 0]);
    asked = 0;
    await assert.rejects(waitForHashesToFinish(url, 100), /still had hashes to finish after 100 ms/);
  } finally {
    server.close();
  }
});
