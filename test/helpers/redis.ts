// Redis for the suites that need it: the server at TEST_REDIS_URL (default the local one), probed
// once. In CI (CI=true, or TEST_REQUIRE_REDIS=true) a missing Redis fails the run; elsewhere its
// tests are skipped, and the run says so. The server is shared with other runs: each run writes
// under its own key prefix and deletes its keys afterwards. startRedisProxy() puts a TCP proxy in
// front of it that a test can cut, stall and restore, to lose Redis without touching the server.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const REQUIRED = process.env.CI === 'true' || process.env.TEST_REQUIRE_REDIS === 'true';

export function redisUrl(): string {
  return REDIS_URL;
}

/** A client for the tests themselves (inspecting keys, cleaning up); fails fast when Redis is away. */
export function openRedis(url = REDIS_URL): Redis {
  return new Redis(url, { lazyConnect: true, connectTimeout: 3_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
}

let redisAvailable: Promise<boolean> | null = null;

async function probeRedis(): Promise<boolean> {
  const client = openRedis();
  client.on('error', () => {});
  try {
    await client.connect();
    if ((await client.ping()) !== 'PONG') throw new Error('PING did not answer PONG');
    return true;
  } catch (error) {
    if (REQUIRED) throw new Error(`Redis is required here (CI) but ${REDIS_URL} does not answer: ${String(error)}`);
    process.stderr.write(`# Redis at ${REDIS_URL} does not answer: its tests are SKIPPED\n`);
    return false;
  } finally {
    client.disconnect();
  }
}

/** A skip reason for describe() when Redis is unavailable (outside CI), or false. */
export async function redisSkip(): Promise<string | false> {
  redisAvailable ??= probeRedis();
  return (await redisAvailable) ? false : `Redis at ${REDIS_URL} is not reachable`;
}

/** A key prefix no other run (or other suite of this run) uses. */
export function uniquePrefix(): string {
  return `gatehouse-test:${process.pid}:${randomBytes(6).toString('hex')}:`;
}

function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** Every key under the prefix (SCAN, never KEYS: the server is shared). */
export async function keysUnder(client: Redis, prefix: string): Promise<string[]> {
  const found = new Set<string>();
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `${globEscape(prefix)}*`, 'COUNT', 1000);
    for (const key of batch) found.add(key);
    cursor = next;
  } while (cursor !== '0');
  return [...found];
}

/** Deletes every key under the prefix; returns how many there were. */
export async function cleanup(prefix: string): Promise<number> {
  const client = openRedis();
  try {
    await client.connect();
    const keys = await keysUnder(client, prefix);
    for (let i = 0; i < keys.length; i += 500) await client.del(...keys.slice(i, i + 500));
    return keys.length;
  } finally {
    client.disconnect();
  }
}

export interface RedisProxy extends Pick<TcpProxy, 'cut' | 'restore' | 'close'> {
  /** redis://127.0.0.1:PORT, to give the app instead of the real server. */
  url: string;
  /** Redis hangs: connections stay open (and new ones are accepted) but nothing is forwarded. */
  stall(): Promise<void>;
}

export async function startRedisProxy(target = REDIS_URL): Promise<RedisProxy> {
  const upstream = new URL(target);
  const proxy = await startTcpProxy(upstream.hostname, Number(upstream.port || 6379));
  return {
    url: `redis://127.0.0.1:${proxy.port}`,
    cut: proxy.cut,
    async stall() {
      proxy.stall();
    },
    restore: proxy.restore,
    close: proxy.close,
  };
}
