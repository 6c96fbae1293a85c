// After a slice of S3's load ends, gatehouse still has hashes to finish: those it has handed to its
// thread pool and the line behind them (16 to 24 sign-ins whose clients have gone, seen on two cores). A raw
// argon2id slice measured after it has to wait for them: measured at once, its first second ran at
// 74–77% of the seconds after it (seen in three runs), which made the raw rate lower and S3's share
// of it higher than the machine gave. The next slice of load waits too (signin-turns.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import { parseMetrics } from '../../test/helpers/metrics.js';

const GAUGES = ['gatehouse_password_hash_active', 'gatehouse_password_hash_queue_depth'];

/** Hashes running or waiting, from gatehouse's /metrics text; throws when a gauge is missing. */
export function hashesInFlight(metricsText: string): number {
  const metrics = parseMetrics(metricsText);
  let total = 0;
  for (const gauge of GAUGES) {
    const value = metrics.find(gauge);
    if (value === undefined) throw new Error(`gatehouse's /metrics has no ${gauge}`);
    total += value;
  }
  return total;
}

/** Waits until gatehouse at `baseUrl` has no hash running or waiting; returns how long that took. */
export async function waitForHashesToFinish(baseUrl: string, timeoutMs = 10_000): Promise<number> {
  const started = performance.now();
  for (;;) {
    const response = await fetch(`${baseUrl}/metrics`);
    if (!response.ok) throw new Error(`gatehouse's /metrics answered ${response.status}`);
    if (hashesInFlight(await response.text()) === 0) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`gatehouse still had hashes to finish after ${timeoutMs} ms`);
    await sleep(25);
  }
}
