// The machine's shared Redis and RabbitMQ: a cluster uses a key prefix and an exchange and queue of
// its own there, checks they answer before starting, and deletes what it made on `down`.
import amqp from 'amqplib';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.CLUSTER_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const AMQP_URL = process.env.CLUSTER_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

function openRedis(url: string): Redis {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 3_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  return client;
}

/** Throws a message naming the server that does not answer. */
export async function checkServices(redisUrl: string, amqpUrl: string): Promise<void> {
  const redis = openRedis(redisUrl);
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(`Redis at ${redisUrl} does not answer (${String(error)}); the cluster's instances share it`);
  } finally {
    redis.disconnect();
  }
  try {
    const connection = await amqp.connect(amqpUrl, { timeout: 3_000 });
    await connection.close();
  } catch (error) {
    throw new Error(`RabbitMQ at ${amqpUrl} does not answer (${String(error)}); the cluster's instances share it`);
  }
}

/** Deletes every key under the prefix (SCAN, never KEYS: the server is shared); returns the count. */
export async function deleteRedisKeys(redisUrl: string, prefix: string): Promise<number> {
  const redis = openRedis(redisUrl);
  try {
    await redis.connect();
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length > 0) deleted += await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    return deleted;
  } finally {
    redis.disconnect();
  }
}

/** Deletes the cluster's exchange and work queue (absent ones are fine). */
export async function deleteAmqpObjects(amqpUrl: string, exchange: string, queue: string): Promise<void> {
  const connection = await amqp.connect(amqpUrl, { timeout: 3_000 });
  connection.on('error', () => {});
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    await channel.deleteQueue(queue);
    await channel.deleteExchange(exchange);
  } finally {
    await connection.close().catch(() => {});
  }
}
