// The import work queue on RabbitMQ (with AMQP_URL): a durable queue of persistent messages that
// each name one stored chunk. A worker acknowledges a message only after the chunk's transaction
// committed, so a worker that dies mid-chunk leaves the message to be redelivered to another.
import amqp, { type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';

export interface WorkQueue {
  publish(jobId: string, seq: number): Promise<boolean>;
  /** Consumes messages one at a time per instance until close(). */
  /** Handles up to `concurrency` messages at once (the channel's prefetch). */
  consume(handle: (jobId: string, seq: number) => Promise<void>, concurrency?: number): Promise<void>;
  close(): Promise<void>;
}

export function createWorkQueue(url: string, queue: string, onError: (error: unknown) => void): WorkQueue {
  let connection: ChannelModel | null = null;
  let publisher: ConfirmChannel | null = null;
  let consumer: Channel | null = null;
  let connecting: Promise<ChannelModel> | null = null;
  let closed = false;

  async function connect(): Promise<ChannelModel> {
    if (connection) return connection;
    connecting ??= (async () => {
      const model = await amqp.connect(url, { timeout: 5_000 });
      model.on('error', onError);
      model.on('close', () => {
        connection = null;
        publisher = null;
        consumer = null;
      });
      connection = model;
      return model;
    })().finally(() => {
      connecting = null;
    });
    return connecting;
  }

  return {
    async publish(jobId, seq) {
      try {
        if (!publisher) {
          const channel = await (await connect()).createConfirmChannel();
          await channel.assertQueue(queue, { durable: true });
          publisher = channel;
        }
        publisher.sendToQueue(queue, Buffer.from(JSON.stringify({ job_id: jobId, seq })), {
          persistent: true,
          contentType: 'application/json',
        });
        await publisher.waitForConfirms();
        return true;
      } catch (error) {
        onError(error);
        publisher = null;
        return false;
      }
    },

    async consume(handle, concurrency = 1) {
      while (!closed) {
        try {
          const channel = await (await connect()).createChannel();
          await channel.assertQueue(queue, { durable: true });
          await channel.prefetch(concurrency);
          consumer = channel;
          await new Promise<void>((resolve) => {
            channel.on('close', () => resolve());
            channel.consume(queue, (message) => {
              if (!message) return;
              let work: { job_id?: unknown; seq?: unknown };
              try {
                work = JSON.parse(message.content.toString('utf8'));
              } catch {
                channel.ack(message);
                return;
              }
              if (typeof work.job_id !== 'string' || typeof work.seq !== 'number') {
                channel.ack(message);
                return;
              }
              handle(work.job_id, work.seq).then(
                () => channel.ack(message),
                (error) => {
                  onError(error);
                  channel.nack(message, false, true);
                },
              );
            });
          });
        } catch (error) {
          onError(error);
        }
        if (!closed) await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    },

    async close() {
      closed = true;
      const old = connection;
      connection = null;
      await consumer?.close().catch(() => {});
      await old?.close().catch(() => {});
    },
  };
}
