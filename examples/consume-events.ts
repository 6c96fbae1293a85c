// A small consumer of gatehouse's events: a durable queue of its own, bound to the event types it
// cares about, de-duplicating by the CloudEvents id (delivery is at-least-once), acknowledging
// only after handling. Run: AMQP_URL=amqp://guest:guest@127.0.0.1:5672 npx tsx examples/consume-events.ts
// A real consumer keeps the seen ids where its own data lives (a table with a unique key), so that
// "handle" and "remember the id" commit together; the in-memory set here is for the example only.
import amqp from 'amqplib';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchange = process.env.AMQP_EXCHANGE ?? 'gatehouse.events';
const queue = process.env.QUEUE ?? 'example.user-directory';
const bindings = (process.env.BINDINGS ?? 'user.*,session.revoked').split(',');

interface CloudEvent {
  id: string;
  type: string;
  subject: string;
  time: string;
  data: Record<string, unknown>;
}

const seen = new Set<string>();

async function handle(event: CloudEvent): Promise<void> {
  // Each user's events arrive in order; events of different users may interleave.
  process.stdout.write(`${event.time} ${event.type} user=${event.subject} ${JSON.stringify(event.data)}\n`);
}

const connection = await amqp.connect(url);
const channel = await connection.createChannel();
await channel.assertExchange(exchange, 'topic', { durable: true });
await channel.assertQueue(queue, { durable: true });
for (const key of bindings) await channel.bindQueue(queue, exchange, key);
// One message at a time keeps each user's order through this consumer as well.
await channel.prefetch(1);
await channel.consume(queue, async (message) => {
  if (!message) return;
  try {
    const event = JSON.parse(message.content.toString('utf8')) as CloudEvent;
    if (!seen.has(event.id)) {
      await handle(event);
      seen.add(event.id);
    }
    channel.ack(message);
  } catch (error) {
    process.stderr.write(`cannot handle a message: ${String(error)}\n`);
    channel.nack(message, false, false);
  }
});
process.stdout.write(`consuming ${bindings.join(', ')} from ${exchange} into ${queue}; Ctrl-C to stop\n`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    connection.close().finally(() => process.exit(0));
  });
}
