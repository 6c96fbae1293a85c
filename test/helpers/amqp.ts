// RabbitMQ for the suites that need it: the broker at TEST_AMQP_URL (default the local one), probed
// once. In CI (CI=true, or TEST_REQUIRE_AMQP=true) a missing broker fails the run; elsewhere its
// tests are skipped, and the run says so. The broker is shared with other runs: each test publishes
// to an exchange of its own (uniqueExchange), reads through an exclusive queue that dies with its
// connection (startCollector), and deletes the exchange afterwards. startAmqpProxy() puts a TCP
// proxy in front of the broker that a test can cut and restore, to lose RabbitMQ without touching it.
import { randomBytes } from 'node:crypto';
import amqp, { type ConsumeMessage } from 'amqplib';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

const AMQP_URL = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const REQUIRED = process.env.CI === 'true' || process.env.TEST_REQUIRE_AMQP === 'true';

export function amqpUrl(): string {
  return AMQP_URL;
}

let amqpAvailable: Promise<boolean> | null = null;

async function probeAmqp(): Promise<boolean> {
  try {
    const connection = await amqp.connect(AMQP_URL, { timeout: 3_000 });
    await connection.close();
    return true;
  } catch (error) {
    if (REQUIRED) throw new Error(`RabbitMQ is required here (CI) but ${AMQP_URL} does not answer: ${String(error)}`);
    process.stderr.write(`# RabbitMQ at ${AMQP_URL} does not answer: its tests are SKIPPED\n`);
    return false;
  }
}

/** A skip reason for describe() when RabbitMQ is unavailable (outside CI), or false. */
export async function amqpSkip(): Promise<string | false> {
  amqpAvailable ??= probeAmqp();
  return (await amqpAvailable) ? false : `RabbitMQ at ${AMQP_URL} is not reachable`;
}

/** An exchange name no other run (or other test of this run) uses. */
export function uniqueExchange(): string {
  return `gatehouse.test.${process.pid}.${randomBytes(6).toString('hex')}`;
}

/** Runs `work` on a channel of a short-lived connection of its own. */
async function withChannel<T>(work: (channel: amqp.Channel) => Promise<T>): Promise<T> {
  const connection = await amqp.connect(AMQP_URL, { timeout: 3_000 });
  connection.on('error', () => {});
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    return await work(channel);
  } finally {
    await connection.close().catch(() => {});
  }
}

/** Declares an exchange of the given type (to stand for one that is already there). */
export async function declareExchange(exchange: string, type: 'topic' | 'fanout' | 'direct'): Promise<void> {
  await withChannel(async (channel) => {
    await channel.assertExchange(exchange, type, { durable: false });
  });
}

export async function deleteExchange(exchange: string): Promise<void> {
  await withChannel((channel) => channel.deleteExchange(exchange));
}

/** Whether the exchange exists (a passive declare: the broker closes the channel with 404 if not). */
export async function exchangeExists(exchange: string): Promise<boolean> {
  return withChannel(async (channel) => {
    try {
      await channel.checkExchange(exchange);
      return true;
    } catch {
      return false;
    }
  });
}

/** A message as it arrived: the routing key, the AMQP properties the relay sets, the parsed body. */
export interface Received {
  routingKey: string;
  messageId: string | undefined;
  contentType: string | undefined;
  persistent: boolean;
  body: { id: string; type: string; subject: string; [key: string]: unknown };
}

export interface Collector {
  readonly messages: Received[];
  /** Calls `listener` with each message as it arrives (after it is in `messages`). */
  onMessage(listener: (message: Received, count: number) => void): void;
  /** Distinct CloudEvents ids received so far. */
  ids(): Set<string>;
  /** Resolves once `done()` holds; fails after `timeoutMs` with what it was waiting for. */
  waitFor(done: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Declares the durable topic exchange (as the relay does) and binds an exclusive, auto-deleted
 * queue to it with '#': every event published from now on is gathered in `messages`.
 */
export async function startCollector(exchange: string): Promise<Collector> {
  const connection = await amqp.connect(AMQP_URL, { timeout: 3_000 });
  connection.on('error', () => {});
  const messages: Received[] = [];
  const listeners: ((message: Received, count: number) => void)[] = [];
  try {
    const channel = await connection.createChannel();
    await channel.assertExchange(exchange, 'topic', { durable: true });
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await channel.bindQueue(queue, exchange, '#');
    await channel.consume(
      queue,
      (message: ConsumeMessage | null) => {
        if (!message) return;
        const received: Received = {
          routingKey: message.fields.routingKey,
          messageId: message.properties.messageId,
          contentType: message.properties.contentType,
          persistent: message.properties.deliveryMode === 2,
          body: JSON.parse(message.content.toString('utf8')),
        };
        messages.push(received);
        for (const listener of listeners) listener(received, messages.length);
      },
      { noAck: true, exclusive: true },
    );
  } catch (error) {
    await connection.close().catch(() => {});
    throw error;
  }
  return {
    messages,
    onMessage: (listener) => listeners.push(listener),
    ids: () => new Set(messages.map((message) => message.body.id)),
    async waitFor(done, what, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${messages.length} messages in)`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async close() {
      await connection.close().catch(() => {});
    },
  };
}

export interface AmqpProxy extends Pick<TcpProxy, 'openConnections' | 'cut' | 'holdReplies' | 'restore' | 'close'> {
  /** The broker's URL (credentials and vhost kept) pointing at the proxy, to give the app. */
  url: string;
}

/** holdReplies(): what clients send still reaches RabbitMQ (messages are routed), but no confirm comes back. */
export async function startAmqpProxy(target = AMQP_URL): Promise<AmqpProxy> {
  const upstream = new URL(target);
  const proxy = await startTcpProxy(upstream.hostname, Number(upstream.port || 5672));
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  return {
    url: url.toString(),
    get openConnections() {
      return proxy.openConnections;
    },
    cut: proxy.cut,
    holdReplies: proxy.holdReplies,
    restore: proxy.restore,
    close: proxy.close,
  };
}
