// The outbox relay: publishes pending events to a durable RabbitMQ topic exchange (routing key =
// event type) with publisher confirms, and marks them published only after the broker confirmed
// them. Delivery is at-least-once (a crash between confirm and mark republishes; consumers drop
// duplicates by the CloudEvents `id`). On PostgreSQL a batch is claimed with FOR UPDATE SKIP
// LOCKED inside a transaction held until the marks are written, so relays in several instances
// never publish the same row at once; a batch holds at most the oldest pending event of each user,
// so each user's events go out in order. On SQLite one relay runs (inside `gatehouse serve`).
// While the broker is away the relay retries with backoff; the API is not affected.
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { Kysely } from 'kysely';
import type { Database, Dialect } from '../../db/schema.js';
import { nowIso } from '../../lib/time.js';
import { toCloudEvent } from './events.js';
import type { EventsRepository, StoredEvent } from './events.repository.js';

export interface RelayOptions {
  db: Kysely<Database>;
  dialect: Dialect;
  events: EventsRepository;
  amqpUrl: string;
  exchange: string;
  source: string;
  logger: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
  batchSize?: number;
  pollMilliseconds?: number;
  onPublished?: (count: number) => void;
  onPublishFailed?: () => void;
}

export interface Relay {
  start(): void;
  /** Publishes one batch now; the number of events published (for tests and the CLI). */
  runOnce(): Promise<number>;
  /** Asks for a run soon (after a commit that wrote events). */
  wake(): void;
  stop(): Promise<void>;
  readonly connected: boolean;
}

const MIN_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 15_000;
// A broker that stops answering (a partition, a memory or disk alarm) would otherwise hold the
// batch, its transaction and stop() until heartbeats notice, minutes later.
const CONFIRM_TIMEOUT_MS = 10_000;

export function createRelay(options: RelayOptions): Relay {
  const batchSize = options.batchSize ?? 200;
  const pollMilliseconds = options.pollMilliseconds ?? 500;
  let connection: ChannelModel | null = null;
  let channel: ConfirmChannel | null = null;
  let connecting: Promise<ConfirmChannel> | null = null;
  let running = false;
  let loop: Promise<void> | null = null;
  let wakeUp: (() => void) | null = null;
  let backoff = MIN_BACKOFF_MS;
  // While backing off, a wake-up (every recorded event sends one) must not cut the wait short, or
  // a busy API would retry an absent broker at every write.
  let backingOff = false;
  let brokerDownLogged = false;

  function dropConnection(): void {
    const old = connection;
    connection = null;
    channel = null;
    old?.close().catch(() => {});
  }

  async function connect(): Promise<ConfirmChannel> {
    const model = await amqp.connect(options.amqpUrl, { timeout: 5_000 });
    model.on('error', () => dropConnection());
    model.on('close', () => {
      if (connection === model) {
        connection = null;
        channel = null;
      }
    });
    let confirm: ConfirmChannel;
    try {
      confirm = await model.createConfirmChannel();
      confirm.on('error', () => dropConnection());
      confirm.on('close', () => {
        if (channel === confirm) channel = null;
      });
      await confirm.assertExchange(options.exchange, 'topic', { durable: true });
    } catch (error) {
      // E.g. the exchange exists with another type: close this connection, or every retry leaks one.
      await model.close().catch(() => {});
      throw error;
    }
    connection = model;
    channel = confirm;
    if (brokerDownLogged) options.logger.info({}, 'event relay: broker reachable again');
    brokerDownLogged = false;
    return confirm;
  }

  async function ensureChannel(): Promise<ConfirmChannel> {
    if (channel) return channel;
    connecting ??= connect().finally(() => {
      connecting = null;
    });
    return connecting;
  }

  async function publish(confirm: ConfirmChannel, batch: StoredEvent[]): Promise<void> {
    for (const event of batch) {
      const body = Buffer.from(JSON.stringify(toCloudEvent(event, options.source)));
      confirm.publish(options.exchange, event.type, body, {
        persistent: true,
        messageId: event.id,
        type: event.type,
        contentType: 'application/cloudevents+json',
        timestamp: Math.floor(new Date(event.time).getTime() / 1000),
      });
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        confirm.waitForConfirms(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no publisher confirm within ${CONFIRM_TIMEOUT_MS} ms`)), CONFIRM_TIMEOUT_MS);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async function runOnce(): Promise<number> {
    const published = await publishBatch();
    if (published > 0) options.onPublished?.(published);
    return published;
  }

  async function publishBatch(): Promise<number> {
    const confirm = await ensureChannel();
    if (options.dialect === 'postgres') {
      return options.db.transaction().execute(async (trx) => {
        const batch = await options.events.claimBatch(trx, batchSize, true);
        if (batch.length === 0) return 0;
        await publish(confirm, batch);
        await options.events.markPublished(
          trx,
          batch.map((event) => event.seq),
          nowIso(),
        );
        return batch.length;
      });
    }
    // SQLite: no write transaction is held while the broker answers (it would block every writer).
    const batch = await options.db.transaction().execute((trx) => options.events.claimBatch(trx, batchSize, false));
    if (batch.length === 0) return 0;
    await publish(confirm, batch);
    await options.events.markPublished(
      options.db,
      batch.map((event) => event.seq),
      nowIso(),
    );
    return batch.length;
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeUp = null;
        resolve();
      }
      wakeUp = done;
    });
  }

  async function run(): Promise<void> {
    while (running) {
      try {
        const published = await runOnce();
        backoff = MIN_BACKOFF_MS;
        if (published < batchSize && running) await sleep(pollMilliseconds);
      } catch (error) {
        options.onPublishFailed?.();
        dropConnection();
        if (!brokerDownLogged) {
          options.logger.warn({ err: error }, 'event relay: cannot publish; events stay in the outbox and are retried with backoff');
          brokerDownLogged = true;
        }
        backingOff = true;
        if (running) await sleep(backoff);
        backingOff = false;
        backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
      }
    }
  }

  return {
    get connected() {
      return channel !== null;
    },
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    runOnce,
    wake() {
      if (!backingOff) wakeUp?.();
    },
    async stop() {
      running = false;
      wakeUp?.();
      await loop?.catch(() => {});
      loop = null;
      const old = connection;
      connection = null;
      channel = null;
      await old?.close().catch(() => {});
    },
  };
}
