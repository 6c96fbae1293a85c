// The outbox relay to a real RabbitMQ (issue "Events and queued work", point 2): events reach a
// durable topic exchange (routing key = type) only after the broker confirmed them; while the
// broker is away (a TCP proxy in front of it is cut) the API keeps answering, readiness stays green,
// the outbox metrics show the lag, and every event arrives once it is back, in each user's order;
// a broker that takes messages but never confirms them costs a batch timeout, not a hang.
// On PostgreSQL (FOR UPDATE SKIP LOCKED) two relays never publish the same event, and a relay
// killed with SIGKILL in the middle of a batch loses nothing. Each test publishes to an exchange
// of its own, reads through an exclusive queue, and deletes the exchange afterwards.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import type { Config } from '../src/config.js';
import { uuidv7 } from '../src/lib/ids.js';
import { EVENT_TYPES } from '../src/modules/events/events.js';
import type { Relay } from '../src/modules/events/relay.js';
import {
  type AmqpProxy,
  amqpSkip,
  amqpUrl,
  type Collector,
  declareExchange,
  deleteExchange,
  exchangeExists,
  type Received,
  startAmqpProxy,
  startCollector,
  uniqueExchange,
} from './helpers/amqp.js';
import { buildTestApp, type TestApp, uniqueName } from './helpers/app.js';
import { type Target, targets } from './helpers/databases.js';
import { readMetrics } from './helpers/metrics.js';

const REPO = new URL('..', import.meta.url).pathname;
/** Generous: how long every pending event may take to arrive once the broker is reachable. */
const DELIVERY_TIMEOUT_MS = 60_000;
/** The relay's batch size (its default): one batch holds at most this many events. */
const RELAY_BATCH = 200;

interface OutboxRow {
  id: string;
  subject: string;
  type: string;
}

function relayOf(t: TestApp): Relay {
  assert.ok(t.services.relay, 'AMQP_URL is set, so the services have a relay');
  return t.services.relay;
}

/** Every recorded event, in outbox (seq) order. */
async function outbox(t: TestApp): Promise<OutboxRow[]> {
  return t.services.database.db.selectFrom('outbox_events').select(['id', 'subject', 'type']).orderBy('seq').execute();
}

async function outboxLag(t: TestApp): Promise<{ pending: number; ageSeconds: number }> {
  const metrics = await readMetrics(t.app);
  const pending = metrics.find('gatehouse_outbox_pending_events');
  const ageSeconds = metrics.find('gatehouse_outbox_oldest_pending_age_seconds');
  assert.ok(pending !== undefined && ageSeconds !== undefined, 'the outbox gauges are exported');
  return { pending, ageSeconds };
}

/**
 * Every recorded event arrived (de-duplicated by id) and nothing else did, and each user's events
 * arrived in the order they were recorded (counting each event's first arrival).
 */
function assertDelivered(recorded: OutboxRow[], messages: Received[]): void {
  const firstArrival = new Map<string, number>();
  messages.forEach((message, index) => {
    if (!firstArrival.has(message.body.id)) firstArrival.set(message.body.id, index);
  });
  const missing = recorded.filter((event) => !firstArrival.has(event.id));
  assert.equal(
    missing.length,
    0,
    `${missing.length} of ${recorded.length} events never arrived, e.g. ${JSON.stringify(missing.slice(0, 3))}`,
  );
  const known = new Set(recorded.map((event) => event.id));
  const strangers = [...firstArrival.keys()].filter((id) => !known.has(id));
  assert.deepEqual(strangers, [], 'only recorded events arrive');

  const bySubject = new Map<string, OutboxRow[]>();
  for (const event of recorded) bySubject.set(event.subject, [...(bySubject.get(event.subject) ?? []), event]);
  for (const [subject, events] of bySubject) {
    const arrived = [...events].sort((a, b) => (firstArrival.get(a.id) ?? 0) - (firstArrival.get(b.id) ?? 0));
    assert.deepEqual(
      arrived.map((event) => `${event.type} ${event.id}`),
      events.map((event) => `${event.type} ${event.id}`),
      `the events of ${subject} arrive in the order they were recorded`,
    );
  }
}

function duplicates(messages: Received[]): number {
  return messages.length - new Set(messages.map((message) => message.body.id)).size;
}

/** Runs `work(0..count-1)` with at most `concurrency` at a time; the results in index order. */
async function inParallel<T>(count: number, concurrency: number, work: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const index = next;
        next += 1;
        results[index] = await work(index);
      }
    }),
  );
  return results;
}

/**
 * Records `users` x `perUser` events straight into the outbox, interleaving the users (each user's
 * next event after every user's previous one), through the recorder the services use.
 */
async function plantEvents(t: TestApp, users: number, perUser: number): Promise<string[]> {
  const subjects = Array.from({ length: users }, () => uuidv7());
  for (let round = 0; round < perUser; round += 1) {
    await t.services.database.db.transaction().execute(async (trx) => {
      for (const subject of subjects) {
        await t.services.events.record(trx, EVENT_TYPES[round % EVENT_TYPES.length] as (typeof EVENT_TYPES)[number], subject, {
          round,
        });
      }
    });
  }
  return subjects;
}

/** An exchange of the test's own with a queue bound to it; both go when `cleanup` runs. */
async function exchangeWithCollector(): Promise<{ exchange: string; collector: Collector; cleanup(): Promise<void> }> {
  const exchange = uniqueExchange();
  const collector = await startCollector(exchange);
  return {
    exchange,
    collector,
    async cleanup() {
      await collector.close();
      await deleteExchange(exchange);
      assert.equal(await exchangeExists(exchange), false, 'the test leaves no exchange behind');
    },
  };
}

const skipAmqp = await amqpSkip();
const allTargets = await targets();

for (const { target, skip } of allTargets) {
  describe(`the event relay to RabbitMQ on ${target}`, { skip: skip || skipAmqp }, () => {
    test('publishes each event to the topic exchange under its type, persistent, with its id, and marks it published', async () => {
      const { exchange, collector, cleanup } = await exchangeWithCollector();
      const t = await buildTestApp(target, { amqpUrl: amqpUrl(), amqpExchange: exchange, eventSource: '/relay-test' });
      try {
        const user = await t.createUser();
        await t.signIn(user.username, user.password);
        const recorded = await outbox(t);
        assert.equal(recorded.length, 3, 'root and the user were created, the user signed in');
        assert.deepEqual((await outboxLag(t)).pending, 3);

        let published = 0;
        for (let i = 0; i < 5 && published < 3; i += 1) published += await relayOf(t).runOnce();
        assert.equal(published, 3);
        await collector.waitFor(() => collector.messages.length >= 3, 'three messages');
        const feed = (await t.app.inject({ url: '/v1/events', headers: { authorization: t.adminBasic } })).json().items;
        assert.deepEqual(
          collector.messages.map((message) => message.body),
          feed,
          'the message bodies are the CloudEvents of the feed, in order',
        );
        for (const message of collector.messages) {
          assert.equal(message.routingKey, message.body.type);
          assert.equal(message.messageId, message.body.id);
          assert.equal(message.contentType, 'application/cloudevents+json');
          assert.equal(message.persistent, true);
        }
        assert.deepEqual(await outboxLag(t), { pending: 0, ageSeconds: 0 });
        assert.equal(await relayOf(t).runOnce(), 0, 'nothing is published twice');
        assert.equal((await readMetrics(t.app)).value('gatehouse_events_published_total'), 3);
      } finally {
        await t.close();
        await cleanup();
      }
    });

    test('keeps the API answering while RabbitMQ is away for 1,000 sign-ups, then delivers every event in each user’s order', async (context) => {
      const { exchange, collector, cleanup } = await exchangeWithCollector();
      const proxy: AmqpProxy = await startAmqpProxy();
      const t = await buildTestApp(target, { amqpUrl: proxy.url, amqpExchange: exchange, databasePoolMax: 10, logLevel: 'warn' });
      try {
        relayOf(t).start();
        const first = await t.createUser();
        await collector.waitFor(() => collector.messages.some((message) => message.body.subject === first.id), 'the first user.created');

        await proxy.cut();
        const outageStarted = Date.now();
        const failuresBefore = (await readMetrics(t.app)).value('gatehouse_events_publish_failures_total');
        const statuses: number[] = [];
        const answered = (response: LightMyRequestResponse) => {
          statuses.push(response.statusCode);
          return response;
        };
        const createdAt = Date.now();
        const created = await inParallel(1_000, 20, async () => {
          const username = uniqueName('relay');
          const password = `pw-${username}-long-enough`;
          const response = answered(
            await t.app.inject({
              method: 'POST',
              url: '/v1/users',
              headers: { authorization: t.adminBasic },
              payload: { username, email: `${username}@example.com`, password },
            }),
          );
          return { id: response.json().id as string, username, password };
        });
        context.diagnostic(`1,000 users created in ${Date.now() - createdAt} ms while RabbitMQ was away`);
        // Every tenth user also signs in, is renamed and is disabled: five events in a set order.
        await inParallel(100, 10, async (index) => {
          const user = created[index * 10] as (typeof created)[number];
          answered(
            await t.app.inject({ method: 'POST', url: '/v1/sessions', payload: { username: user.username, password: user.password } }),
          );
          for (const payload of [{ display_name: `Renamed ${index}` }, { status: 'disabled' }]) {
            answered(
              await t.app.inject({ method: 'PATCH', url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic }, payload }),
            );
          }
        });
        assert.equal(statuses.length, 1_300);
        assert.deepEqual(
          statuses.filter((status) => ![200, 201].includes(status)),
          [],
          'no API error while the broker is away',
        );
        const ready = await t.app.inject({ url: '/readyz' });
        assert.equal(ready.statusCode, 200, ready.body);
        const lag = await outboxLag(t);
        assert.ok(lag.pending >= 1_500, `the outbox holds the undelivered events: ${lag.pending}`);
        assert.ok(lag.ageSeconds > 0, `the oldest pending event has an age: ${lag.ageSeconds}`);
        const outageSeconds = (Date.now() - outageStarted) / 1000;
        const failures = (await readMetrics(t.app)).value('gatehouse_events_publish_failures_total') - failuresBefore;
        context.diagnostic(`${failures} failed relay attempts in ${outageSeconds.toFixed(1)} s of outage`);
        assert.ok(failures >= 1, 'the relay noticed the broker was away');
        // Backing off from 250 ms, doubling: a handful of attempts, not one per recorded event.
        assert.ok(failures <= 10 + outageSeconds, `the relay backs off instead of retrying at every write: ${failures} attempts`);

        await proxy.restore();
        const recorded = await outbox(t);
        await collector.waitFor(
          () => collector.ids().size >= recorded.length,
          `all ${recorded.length} events after the broker came back`,
          DELIVERY_TIMEOUT_MS,
        );
        assertDelivered(recorded, collector.messages);
        const deadline = Date.now() + 10_000;
        while ((await outboxLag(t)).pending > 0) {
          assert.ok(Date.now() < deadline, 'the relay marks what the broker confirmed');
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.deepEqual(await outboxLag(t), { pending: 0, ageSeconds: 0 });
        const disabledUser = created[0] as (typeof created)[number];
        const typesById = new Map(
          collector.messages
            .filter((message) => message.body.subject === disabledUser.id)
            .map((message) => [message.body.id, message.body.type]),
        );
        assert.deepEqual(
          [...typesById.values()],
          ['user.created', 'session.created', 'user.updated', 'user.updated', 'user.disabled', 'session.revoked'],
          'a disabled user’s events, de-duplicated, in order',
        );
        context.diagnostic(
          `${collector.messages.length} messages for ${recorded.length} events (${duplicates(collector.messages)} duplicates)`,
        );
      } finally {
        await t.close();
        await proxy.close();
        await cleanup();
      }
    });
    test('gives up on a batch RabbitMQ never confirms, delivers it once RabbitMQ answers again, and stops while it hangs', async (context) => {
      const { exchange, collector, cleanup } = await exchangeWithCollector();
      const proxy = await startAmqpProxy();
      const t = await buildTestApp(target, { amqpUrl: proxy.url, amqpExchange: exchange, logLevel: 'warn' });
      try {
        relayOf(t).start();
        await collector.waitFor(() => collector.messages.length === 1, 'root’s user.created');

        // The broker takes messages but never confirms them (as under a memory or disk alarm).
        proxy.holdReplies();
        const stalled = await t.createUser();
        await collector.waitFor(() => collector.messages.some((message) => message.body.subject === stalled.id), 'the unconfirmed event');
        const stalledAt = Date.now();
        assert.equal((await t.app.inject({ url: '/readyz' })).statusCode, 200);
        assert.ok((await outboxLag(t)).pending >= 1, 'an unconfirmed event is still pending');
        const deadline = Date.now() + 30_000;
        while ((await readMetrics(t.app)).value('gatehouse_events_publish_failures_total') === 0) {
          assert.ok(Date.now() < deadline, 'the relay gives up on an unconfirmed batch well before heartbeats would notice');
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        context.diagnostic(`gave up on the unconfirmed batch after ${Date.now() - stalledAt} ms`);

        await proxy.restore();
        const later = await t.createUser();
        const recorded = await outbox(t);
        await collector.waitFor(() => collector.ids().size >= recorded.length, 'every event once the broker answers', DELIVERY_TIMEOUT_MS);
        assertDelivered(recorded, collector.messages);
        assert.ok(collector.messages.some((message) => message.body.subject === later.id));

        // Stopping while the broker hangs again, in the middle of a batch, does not wait for heartbeats.
        proxy.holdReplies();
        const last = await t.createUser();
        await collector.waitFor(() => collector.messages.some((message) => message.body.subject === last.id), 'the last event');
        const stopping = Date.now();
        await within(relayOf(t).stop(), 20_000, 'relay.stop() while the broker hangs');
        context.diagnostic(`stopped in ${Date.now() - stopping} ms`);
        assert.ok((await pendingIds(t)).size >= 1, 'the unconfirmed event stays pending, to be published again');
      } finally {
        await t.close();
        await proxy.close();
        await cleanup();
      }
    });
  });
}

describe('the event relay when the exchange cannot be declared', { skip: skipAmqp }, () => {
  test('retries with backoff without leaving a connection open per attempt, and the API keeps answering', async (context) => {
    const exchange = uniqueExchange();
    await declareExchange(exchange, 'fanout');
    const proxy = await startAmqpProxy();
    const t = await buildTestApp('sqlite', { amqpUrl: proxy.url, amqpExchange: exchange, logLevel: 'warn' });
    try {
      relayOf(t).start();
      const deadline = Date.now() + 20_000;
      let failures = 0;
      let mostConnections = 0;
      while (failures < 4) {
        assert.ok(Date.now() < deadline, `the relay retried (${failures} failures so far)`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        mostConnections = Math.max(mostConnections, proxy.openConnections);
        failures = (await readMetrics(t.app)).value('gatehouse_events_publish_failures_total');
      }
      context.diagnostic(`${failures} failed attempts, at most ${mostConnections} connection(s) open at once`);
      assert.ok(mostConnections <= 1, `a failed attempt closes its connection: ${mostConnections} open at once`);
      await new Promise((resolve) => setTimeout(resolve, 300)); // well inside the next 2 s wait
      assert.equal(proxy.openConnections, 0, 'no connection stays open between attempts');
      assert.equal((await t.createUser()).status, 'active');
      assert.equal((await t.app.inject({ url: '/readyz' })).statusCode, 200);
      assert.equal(t.logs.filter((line) => line.includes('event relay: cannot publish')).length, 1, 'the outage is logged once');
    } finally {
      await t.close();
      await proxy.close();
      await deleteExchange(exchange);
    }
  });
});

// ---- PostgreSQL only: several relays, and relays that die ----------------------------------------

const postgres = allTargets.find((candidate) => candidate.target === 'postgres') as { target: Target; skip: string | false };
const children = new Set<ChildProcess>();

/** `gatehouse relay` as a process of its own; resolves with its exit code or signal. */
function spawnRelay(env: Record<string, string>) {
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(GATEHOUSE_|DATABASE_|AMQP_|REDIS_|NODE_TEST_CONTEXT$)/.test(name)) childEnv[name] = value;
  }
  const child = spawn(process.execPath, ['bin/gatehouse.cjs', 'relay'], {
    cwd: REPO,
    env: { ...childEnv, GATEHOUSE_PASSWORD_HASH_PROFILE: 'test', GATEHOUSE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  return { child, exited, output: () => output };
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function pendingIds(t: TestApp): Promise<Set<string>> {
  const rows = await t.services.database.db.selectFrom('outbox_events').select('id').where('published_at', 'is', null).execute();
  return new Set(rows.map((row) => row.id));
}

describe('several relays on one PostgreSQL database (SKIP LOCKED: PostgreSQL only)', { skip: postgres.skip || skipAmqp }, () => {
  after(() => {
    for (const child of children) child.kill('SIGKILL');
  });

  test('two relays publish each of 10,000 events exactly once, in each user’s order (PostgreSQL only)', async (context) => {
    const { exchange, collector, cleanup } = await exchangeWithCollector();
    const overrides: Partial<Config> = { amqpUrl: amqpUrl(), amqpExchange: exchange, logLevel: 'warn' };
    const first = await buildTestApp('postgres', overrides);
    let second: TestApp | undefined;
    try {
      second = await buildTestApp('postgres', overrides, { database: first.database, keepDatabase: true });
      await plantEvents(first, 500, 20);
      const recorded = await outbox(first);
      assert.equal(recorded.length, 10_001, 'root and the planted events');

      const started = performance.now();
      relayOf(first).start();
      relayOf(second).start();
      await collector.waitFor(() => collector.ids().size >= recorded.length, `all ${recorded.length} events`, DELIVERY_TIMEOUT_MS);
      const seconds = (performance.now() - started) / 1000;
      await relayOf(first).stop();
      await relayOf(second).stop();

      const byFirst = (await readMetrics(first.app)).value('gatehouse_events_published_total');
      const bySecond = (await readMetrics(second.app)).value('gatehouse_events_published_total');
      const throughput = `two relays on PostgreSQL: ${recorded.length} events in ${seconds.toFixed(2)} s = ${Math.round(recorded.length / seconds)} events/s (${byFirst} + ${bySecond})`;
      console.log(throughput);
      context.diagnostic(throughput);

      assert.equal(duplicates(collector.messages), 0, 'healthy relays never publish an event twice');
      assertDelivered(recorded, collector.messages);
      assert.equal(byFirst + bySecond, recorded.length, 'each event was confirmed to exactly one relay');
      assert.ok(byFirst > 0 && bySecond > 0, 'both relays took batches');
      assert.equal((await pendingIds(first)).size, 0);
    } finally {
      await second?.close();
      await first.close();
      await cleanup();
    }
  });

  test('a relay killed with SIGKILL in the middle of a batch loses nothing: the next one delivers every event (PostgreSQL only)', async (context) => {
    const { exchange, collector, cleanup } = await exchangeWithCollector();
    const proxy = await startAmqpProxy();
    const t = await buildTestApp('postgres', { amqpUrl: null, logLevel: 'warn' });
    const env = { DATABASE_URL: t.database.url, AMQP_EXCHANGE: exchange };
    try {
      // The first relay goes through the proxy. It is idle and connected once the only event
      // (root's user.created) has arrived and been marked.
      const killed = spawnRelay({ ...env, AMQP_URL: proxy.url });
      await collector.waitFor(() => collector.messages.length === 1, 'the first relay to deliver the first event', 30_000);
      const deadline = Date.now() + 10_000;
      while ((await pendingIds(t)).size > 0) {
        assert.ok(Date.now() < deadline, `the first relay marks what was confirmed\n${killed.output()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }

      // Confirms stop coming back: the relay publishes a whole batch that it can never mark.
      proxy.holdReplies();
      await plantEvents(t, 400, 25);
      const recorded = await outbox(t);
      assert.equal(recorded.length, 10_001);
      await collector.waitFor(() => collector.messages.length >= 1 + RELAY_BATCH, 'a first batch from the relay', 30_000);
      killed.child.kill('SIGKILL');
      assert.equal(await within(killed.exited, 10_000, 'the killed relay exits'), 'SIGKILL', killed.output());
      const pending = await pendingIds(t);
      const publishedUnmarked = collector.messages.filter((message) => pending.has(message.body.id)).length;
      assert.ok(publishedUnmarked >= RELAY_BATCH, `it died with a published batch it had not marked (${publishedUnmarked})`);

      // The second relay is killed wherever it is once half of the events have arrived.
      const interrupted = spawnRelay({ ...env, AMQP_URL: amqpUrl() });
      collector.onMessage((_message, count) => {
        if (count === Math.floor(recorded.length / 2)) interrupted.child.kill('SIGKILL');
      });
      assert.equal(await within(interrupted.exited, 60_000, 'the second relay is killed half-way'), 'SIGKILL', interrupted.output());
      const midway = collector.ids().size;
      assert.ok(midway < recorded.length, `it died before it was done (${midway} of ${recorded.length})`);

      const last = spawnRelay({ ...env, AMQP_URL: amqpUrl() });
      await collector.waitFor(() => collector.ids().size >= recorded.length, `all ${recorded.length} events`, DELIVERY_TIMEOUT_MS);
      const marked = Date.now() + 10_000;
      while ((await pendingIds(t)).size > 0) {
        assert.ok(Date.now() < marked, 'the last relay marks everything');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      last.child.kill('SIGTERM');
      assert.equal(await within(last.exited, 10_000, 'the last relay exits on SIGTERM'), 0, last.output());

      assertDelivered(recorded, collector.messages);
      const repeats = duplicates(collector.messages);
      assert.ok(repeats >= publishedUnmarked, 'the batch that was never marked was published again (at-least-once)');
      context.diagnostic(`${collector.messages.length} messages for ${recorded.length} events: ${repeats} duplicates`);
    } finally {
      for (const child of children) child.kill('SIGKILL');
      await t.close();
      await proxy.close();
      await cleanup();
    }
  });
});
