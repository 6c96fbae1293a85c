// RabbitMQ for the suites that need it: the broker at TEST_AMQP_URL (default the local one), probed
// once. In CI (CI=true, or TEST_REQUIRE_AMQP=true) a missing broker fails the run; elsewhere its
// tests are skipped, and the run says so. The broker is shared with other runs: each test publishes
// to an exchange of its own (uniqueExchange), reads through an exclusive queue that dies with its
// connection (startCollector), and deletes the exchange afterwards. startAmqpProxy() puts a TCP
// proxy in front of the broker that a test can cut and restore, to lose RabbitMQ without touching it.
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import amqp, { type ConsumeMessage } from 'amqplib';

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

export interface AmqpProxy {
  /** The broker's URL (credentials and vhost kept) pointing at the proxy, to give the app. */
  url: string;
  /** Connections from clients that are open now. */
  readonly openConnections: number;
  /** RabbitMQ goes away: every connection is closed and new ones are refused. */
  cut(): Promise<void>;
  /**
   * RabbitMQ stops answering: what clients send still reaches it (their messages are routed), but
   * nothing comes back (no publisher confirms), on open connections and new ones.
   */
  holdReplies(): void;
  /** RabbitMQ comes back: new connections are forwarded again (after holdReplies, open ones are closed). */
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startAmqpProxy(target = AMQP_URL): Promise<AmqpProxy> {
  const upstream = new URL(target);
  const upstreamPort = Number(upstream.port || 5672);
  const sockets = new Set<Socket>();
  const clients = new Set<Socket>();
  const brokers = new Map<Socket, Socket>();
  let holding = false;
  let server: Server | null = null;
  let port = 0;

  function track(socket: Socket): void {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  }

  function onConnection(client: Socket): void {
    track(client);
    clients.add(client);
    client.on('close', () => clients.delete(client));
    const broker = connect(upstreamPort, upstream.hostname);
    track(broker);
    brokers.set(broker, client);
    broker.on('close', () => brokers.delete(broker));
    client.pipe(broker);
    if (holding) broker.pause();
    else broker.pipe(client);
    client.on('close', () => broker.destroy());
    broker.on('close', () => client.destroy());
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
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    get openConnections() {
      return clients.size;
    },
    cut: stopListening,
    holdReplies() {
      holding = true;
      for (const [broker, client] of brokers) {
        broker.unpipe(client);
        broker.pause();
      }
    },
    async restore() {
      if (holding) {
        holding = false;
        for (const socket of sockets) socket.destroy();
      }
      if (!server) await listen();
    },
    close: stopListening,
  };
}
