// Redis for the suites that need it: the server at TEST_REDIS_URL (default the local one), probed
// once. In CI (CI=true, or TEST_REQUIRE_REDIS=true) a missing Redis fails the run; elsewhere its
// tests are skipped, and the run says so. The server is shared with other runs: each run writes
// under its own key prefix and deletes its keys afterwards. startRedisProxy() puts a TCP proxy in
// front of it that a test can cut, stall and restore, to lose Redis without touching the server.
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';

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

export interface RedisProxy {
  /** redis://127.0.0.1:PORT, to give the app instead of the real server. */
  url: string;
  /** Redis goes away: every connection is closed and new ones are refused. */
  cut(): Promise<void>;
  /** Redis hangs: connections stay open (and new ones are accepted) but nothing is forwarded. */
  stall(): Promise<void>;
  /** Redis comes back: new connections are forwarded again (stalled ones are closed). */
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startRedisProxy(target = REDIS_URL): Promise<RedisProxy> {
  const upstream = new URL(target);
  const upstreamPort = Number(upstream.port || 6379);
  const sockets = new Set<Socket>();
  let mode: 'forward' | 'stall' = 'forward';
  let server: Server | null = null;
  let port = 0;

  function track(socket: Socket): void {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  }

  function onConnection(client: Socket): void {
    track(client);
    if (mode === 'stall') return;
    const server = connect(upstreamPort, upstream.hostname);
    track(server);
    client.pipe(server);
    server.pipe(client);
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  }

  async function listen(): Promise<void> {
    const next = createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      next.once('error', reject);
      next.listen(port, '127.0.0.1', () => resolve());
    });
    const address = next.address();
    if (address && typeof address === 'object') port = address.port;
    server = next;
  }

  async function stopListening(): Promise<void> {
    const current = server;
    server = null;
    for (const socket of sockets) socket.destroy();
    if (current) await new Promise<void>((resolve) => current.close(() => resolve()));
  }

  await listen();
  return {
    url: `redis://127.0.0.1:${port}`,
    cut: stopListening,
    async stall() {
      mode = 'stall';
      for (const socket of sockets) {
        socket.unpipe();
        socket.pause();
      }
    },
    async restore() {
      mode = 'forward';
      for (const socket of sockets) socket.destroy();
      if (!server) await listen();
    },
    close: stopListening,
  };
}
