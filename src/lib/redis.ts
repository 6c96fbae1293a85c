// The Redis connection (optional: REDIS_URL). Commands never queue while Redis is away and time
// out after half a second, so a lost Redis costs callers a fast error, never a hung request; the
// client keeps reconnecting in the background. A connection that stops answering (a hung server, a
// network that drops packets) is closed after a second, so that callers fail fast from then on
// instead of each waiting out the command timeout.
import { Redis } from 'ioredis';

export function createRedis(url: string, onError: (error: Error) => void): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 500,
    socketTimeout: 1_000,
    connectTimeout: 1_000,
    retryStrategy: () => 1_000,
    lazyConnect: false,
  });
  reportErrorsOncePerMinute(redis, onError);
  return redis;
}

// Reconnection attempts fail once a second while Redis is away: report at most once a minute.
function reportErrorsOncePerMinute(connection: Redis, onError: (error: Error) => void): void {
  let lastReported = 0;
  connection.on('error', (error: Error) => {
    if (Date.now() - lastReported > 60_000) {
      lastReported = Date.now();
      onError(error);
    }
  });
}

/**
 * A connection in subscriber mode on one channel. ioredis subscribes again by itself after a
 * reconnection; `onSubscribed` runs on every (re)subscription, since messages published while the
 * connection was down are lost.
 */
export function subscribeToChannel(
  url: string,
  channel: string,
  handlers: { onMessage: (message: string) => void; onSubscribed: () => void; onError: (error: Error) => void },
): { close(): Promise<void> } {
  const subscriber = new Redis(url, { connectTimeout: 1_000, retryStrategy: () => 1_000, maxRetriesPerRequest: null });
  reportErrorsOncePerMinute(subscriber, handlers.onError);
  subscriber.on('message', (from: string, message: string) => {
    if (from === channel) handlers.onMessage(message);
  });
  subscriber.on('ready', () => {
    // After a reconnection, ioredis has re-sent SUBSCRIBE before 'ready'; the first time, it is sent here.
    handlers.onSubscribed();
  });
  subscriber.subscribe(channel).catch(() => {});
  return {
    async close() {
      await subscriber.quit().catch(() => subscriber.disconnect());
    },
  };
}
