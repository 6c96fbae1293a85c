// The outbox and the polling feed (issue "Events and queued work", points 1 and 3), without a
// broker: every state change records its CloudEvent in the change's own transaction (a change that
// fails records nothing), events never carry a password, a hash or a token, GET /v1/events pages
// through them oldest first for admins, and old events are pruned. Runs on SQLite and PostgreSQL.
// The relay to RabbitMQ is test/relay.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, mock, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { bearer, buildTestApp, problem, type TestApp, type TestUser } from './helpers/app.js';
import { type Target, targets } from './helpers/databases.js';

interface CloudEventBody {
  specversion: string;
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: string;
  data: Record<string, unknown>;
}

const SOURCE = '/gatehouse-under-test';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const RFC3339_MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const CLOUD_EVENT_FIELDS = ['data', 'datacontenttype', 'id', 'source', 'specversion', 'subject', 'time', 'type'];
const DAY_MS = 86_400_000;
const PRUNE_INTERVAL_MS = 60 * 60 * 1000;

/** GET /v1/events as the admin, as `authorization`, or anonymously (null). */
function feed(t: TestApp, query: string, authorization: string | null = t.adminBasic): Promise<LightMyRequestResponse> {
  return t.app.inject({ url: `/v1/events${query}`, headers: authorization ? { authorization } : {} });
}

/** Every kept event, oldest first, read through the feed one full page after another. */
async function allEvents(t: TestApp): Promise<CloudEventBody[]> {
  const events: CloudEventBody[] = [];
  let after: string | null = null;
  for (;;) {
    const response = await feed(t, `?limit=1000${after ? `&after=${after}` : ''}`);
    assert.equal(response.statusCode, 200, response.body);
    const page = response.json() as { items: CloudEventBody[]; next_after: string | null };
    events.push(...page.items);
    if (page.items.length === 0) return events;
    after = page.next_after;
  }
}

async function eventsOf(t: TestApp, subject: string): Promise<CloudEventBody[]> {
  return (await allEvents(t)).filter((event) => event.subject === subject);
}

async function typesOf(t: TestApp, subject: string): Promise<string[]> {
  return (await eventsOf(t, subject)).map((event) => event.type);
}

function assertProblem(response: LightMyRequestResponse, status: number, code: string): void {
  assert.equal(response.statusCode, status, response.body);
  assert.equal(problem(response).code, code, response.body);
}

function patch(t: TestApp, id: string, payload: Record<string, unknown>, authorization = t.adminBasic) {
  return t.app.inject({ method: 'PATCH', url: `/v1/users/${id}`, headers: { authorization }, payload });
}

function signOut(t: TestApp, accessToken: string) {
  return t.app.inject({ method: 'DELETE', url: '/v1/sessions/current', headers: { authorization: bearer(accessToken) } });
}

function refresh(t: TestApp, refreshToken: string) {
  return t.app.inject({ method: 'POST', url: '/v1/sessions/refresh', payload: { refresh_token: refreshToken } });
}

function changePassword(t: TestApp, authorization: string, current: string, next: string) {
  return t.app.inject({
    method: 'PUT',
    url: '/v1/users/me/password',
    headers: { authorization },
    payload: { current_password: current, new_password: next },
  });
}

/** Moves events back in time, as if they had been recorded `days` ago. */
async function ageEvents(t: TestApp, ids: string[], days: number): Promise<void> {
  const time = new Date(Date.now() - days * DAY_MS).toISOString();
  await t.services.database.db.updateTable('outbox_events').set({ time }).where('id', 'in', ids).execute();
}

async function markPublished(t: TestApp, ids: string[]): Promise<void> {
  const rows = await t.services.database.db.selectFrom('outbox_events').select('seq').where('id', 'in', ids).execute();
  assert.equal(rows.length, ids.length);
  await t.services.eventsRepository.markPublished(
    t.services.database.db,
    rows.map((row) => Number(row.seq)),
    new Date().toISOString(),
  );
}

/** Runs the app's hourly housekeeping once (its interval is mocked while the app is built). */
async function withHourlyHousekeeping(
  target: Target,
  amqpUrl: string | null,
  work: (t: TestApp, runHousekeeping: () => Promise<void>) => Promise<void>,
) {
  mock.timers.enable({ apis: ['setInterval'] });
  let t: TestApp | undefined;
  try {
    t = await buildTestApp(target, { eventSource: SOURCE, amqpUrl, eventRetentionDays: 7 });
    const app = t;
    await work(app, async () => {
      const logged = app.logs.length;
      mock.timers.tick(PRUNE_INTERVAL_MS);
      const deadline = Date.now() + 10_000;
      while (!app.logs.slice(logged).some((line) => /pruned old login events, events and idempotency keys|pruning failed/.test(line))) {
        assert.ok(Date.now() < deadline, 'the housekeeping logged what it pruned');
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
  } finally {
    mock.timers.reset();
    await t?.close();
  }
}

for (const { target, skip } of await targets()) {
  describe(`the outbox and the event feed on ${target} without a broker`, { skip }, () => {
    let t: TestApp;
    let member: TestUser;
    let memberToken: string;
    before(async () => {
      t = await buildTestApp(target, { eventSource: SOURCE });
      member = await t.createUser();
      memberToken = (await t.signIn(member.username, member.password)).access_token;
    });
    after(async () => t?.close());

    test('records a user.created CloudEvent 1.0 with the public user, readable by admins', async () => {
      const user = await t.createUser({ display_name: 'Ada Lovelace' });
      const events = await eventsOf(t, user.id);
      assert.equal(events.length, 1, JSON.stringify(events));
      const [event] = events as [CloudEventBody];
      assert.deepEqual(Object.keys(event).sort(), CLOUD_EVENT_FIELDS);
      assert.equal(event.specversion, '1.0');
      assert.match(event.id, UUID);
      assert.equal(event.source, SOURCE);
      assert.equal(event.type, 'user.created');
      assert.equal(event.subject, user.id);
      assert.match(event.time, RFC3339_MILLIS);
      assert.ok(Math.abs(Date.parse(event.time) - Date.now()) < 60_000, `time is now: ${event.time}`);
      assert.equal(event.datacontenttype, 'application/json');
      const { password: _password, ...view } = user;
      assert.deepEqual(event.data, { user: view });
    });

    test('lists events oldest first, and `after` with `limit` pages through them to the end', async () => {
      const created: TestUser[] = [];
      for (let i = 0; i < 5; i += 1) created.push(await t.createUser());
      const everything = await allEvents(t);
      const subjects = new Set(created.map((user) => user.id));
      assert.deepEqual(
        everything.filter((event) => subjects.has(event.subject)).map((event) => event.subject),
        created.map((user) => user.id),
        'the users’ events come in the order they were created',
      );
      for (let i = 1; i < everything.length; i += 1) {
        const [earlier, later] = [everything[i - 1] as CloudEventBody, everything[i] as CloudEventBody];
        assert.ok(earlier.time <= later.time, `oldest first: ${earlier.time} then ${later.time}`);
      }

      const paged: CloudEventBody[] = [];
      let after: string | null = null;
      for (let page = 0; page < everything.length + 2; page += 1) {
        const response = await feed(t, `?limit=2${after ? `&after=${after}` : ''}`);
        assert.equal(response.statusCode, 200, response.body);
        const body = response.json() as { items: CloudEventBody[]; next_after: string | null };
        assert.ok(body.items.length <= 2);
        if (body.items.length === 0) {
          assert.equal(body.next_after, after, 'at the end, next_after is the given after');
          break;
        }
        assert.equal(body.next_after, body.items.at(-1)?.id, 'next_after is the last item');
        paged.push(...body.items);
        after = body.next_after;
      }
      assert.deepEqual(
        paged.map((event) => event.id),
        everything.map((event) => event.id),
      );

      const middle = everything[everything.length - 3] as CloudEventBody;
      const rest = await feed(t, `?after=${middle.id}`);
      assert.deepEqual(
        rest.json().items.map((event: CloudEventBody) => event.id),
        everything.slice(-2).map((event) => event.id),
        'after starts right after the given event',
      );
    });

    test('answers an unknown `after` or a bad `limit` with 400', async () => {
      const unknown = await feed(t, '?after=019acb3e-9f10-7d2b-8c1a-3e5f7a9b1c2d');
      assertProblem(unknown, 400, 'invalid_request');
      assert.ok(
        problem(unknown).errors?.some((error) => error.field === 'after'),
        unknown.body,
      );
      assertProblem(await feed(t, '?limit=0'), 400, 'invalid_request');
      assertProblem(await feed(t, '?limit=1001'), 400, 'invalid_request');
    });

    test('is for admins only: a user gets 403, an anonymous caller 401', async () => {
      assertProblem(await feed(t, '', bearer(memberToken)), 403, 'forbidden');
      assertProblem(await feed(t, '', t.basic(member.username, member.password)), 403, 'forbidden');
      assertProblem(await feed(t, '', null), 401, 'unauthorized');
    });

    test('never carries a password, a password hash or a token, whatever happened to the user', async () => {
      const canary = `canary-${Math.random().toString(36).slice(2)}-password`;
      const nextCanary = `next-${canary}`;
      const user = await t.createUser({ password: canary });
      const secrets = [canary, nextCanary, '$argon2'];
      const first = await t.signIn(user.username, canary);
      const second = await t.signIn(user.username, canary);
      secrets.push(first.access_token, first.refresh_token, second.access_token, second.refresh_token);
      const rotated = await refresh(t, first.refresh_token);
      assert.equal(rotated.statusCode, 200, rotated.body);
      secrets.push(rotated.json().access_token, rotated.json().refresh_token);
      assert.equal((await refresh(t, first.refresh_token)).statusCode, 401, 'reuse of a rotated token ends the session');
      assert.equal((await changePassword(t, bearer(second.access_token), canary, nextCanary)).statusCode, 204);
      assert.equal((await signOut(t, second.access_token)).statusCode, 204);
      assert.equal((await patch(t, user.id, { display_name: 'Changed', status: 'disabled' })).statusCode, 200);
      const removed = await t.app.inject({ method: 'DELETE', url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } });
      assert.equal(removed.statusCode, 204, removed.body);

      const events = await eventsOf(t, user.id);
      assert.deepEqual(
        [...new Set(events.map((event) => event.type))].sort(),
        ['session.created', 'session.revoked', 'user.created', 'user.deleted', 'user.disabled', 'user.password_changed', 'user.updated'],
        'the canary user went through every kind of change',
      );
      const stored = await t.services.database.db.selectFrom('outbox_events').select('data').execute();
      for (const text of [...(await allEvents(t)).map((event) => JSON.stringify(event)), ...stored.map((row) => row.data)]) {
        for (const secret of secrets) assert.ok(!text.includes(secret), `an event carries a secret (${secret.slice(0, 12)}…): ${text}`);
        assert.doesNotMatch(text, /"(password|password_hash|refresh_token|access_token)"\s*:/);
      }
    });

    test('a PATCH records user.updated with the changed fields; one that changes nothing records nothing', async () => {
      const user = await t.createUser();
      const response = await patch(t, user.id, { display_name: 'Grace', email: `new-${user.email}` });
      assert.equal(response.statusCode, 200, response.body);
      const events = await eventsOf(t, user.id);
      assert.deepEqual(
        events.map((event) => event.type),
        ['user.created', 'user.updated'],
      );
      const updated = events[1] as CloudEventBody;
      assert.deepEqual([...(updated.data.changed as string[])].sort(), ['display_name', 'email']);
      assert.deepEqual(updated.data.user, response.json());

      assert.equal((await patch(t, user.id, { display_name: 'Grace' })).statusCode, 200);
      assert.equal((await eventsOf(t, user.id)).length, 2, 'no change, no event');
    });

    test('a PATCH or DELETE that fails (email_taken, last_admin) records no event', async () => {
      const taken = await t.createUser();
      const user = await t.createUser();
      const admin = (await t.services.users.findByUsername('root')) as { id: string };
      const before = await allEvents(t);

      assertProblem(await patch(t, user.id, { email: taken.email, display_name: 'Not kept' }), 409, 'email_taken');
      assertProblem(await patch(t, admin.id, { roles: ['user'] }), 409, 'last_admin');
      assertProblem(await patch(t, admin.id, { status: 'disabled' }), 409, 'last_admin');
      const removal = await t.app.inject({ method: 'DELETE', url: `/v1/users/${admin.id}`, headers: { authorization: t.adminBasic } });
      assertProblem(removal, 409, 'last_admin');
      assertProblem(
        await changePassword(t, t.basic(user.username, user.password), 'not-the-password', 'a-new-password-1'),
        400,
        'invalid_request',
      );

      assert.deepEqual(
        (await allEvents(t)).map((event) => event.id),
        before.map((event) => event.id),
      );
    });

    test('disabling records user.updated, user.disabled and session.revoked for each live session, in that order', async () => {
      const user = await t.createUser();
      const sessions = [await t.signIn(user.username, user.password), await t.signIn(user.username, user.password)];
      const response = await patch(t, user.id, { status: 'disabled' });
      assert.equal(response.statusCode, 200, response.body);
      const events = await eventsOf(t, user.id);
      assert.deepEqual(
        events.map((event) => event.type),
        ['user.created', 'session.created', 'session.created', 'user.updated', 'user.disabled', 'session.revoked', 'session.revoked'],
      );
      assert.equal((events[4]?.data.user as { status?: string } | undefined)?.status, 'disabled');
      const revoked = events.slice(5).map((event) => event.data);
      const created = events.slice(1, 3).map((event) => event.data.session_id);
      assert.deepEqual(revoked.map((data) => data.session_id).sort(), [...created].sort());
      assert.ok(revoked.every((data) => data.reason === 'user_disabled'));
      for (const session of sessions) assert.equal((await refresh(t, session.refresh_token)).statusCode, 401);
    });

    test('sign-in records session.created; sign-out records session.revoked once', async () => {
      const user = await t.createUser();
      const session = await t.signIn(user.username, user.password);
      const [, created] = await eventsOf(t, user.id);
      assert.equal(created?.type, 'session.created');
      assert.equal(typeof created?.data.session_id, 'string');
      assert.equal(created?.data.method, 'password');

      assert.equal((await signOut(t, session.access_token)).statusCode, 204);
      assert.equal((await signOut(t, session.access_token)).statusCode, 401, 'the session is over');
      const events = await eventsOf(t, user.id);
      assert.deepEqual(
        events.map((event) => event.type),
        ['user.created', 'session.created', 'session.revoked'],
      );
      assert.deepEqual(events[2]?.data, { session_id: created?.data.session_id, reason: 'signed_out' });
    });

    test('reuse of a rotated refresh token records session.revoked once, a plain rotation nothing', async () => {
      const user = await t.createUser();
      const session = await t.signIn(user.username, user.password);
      const rotated = await refresh(t, session.refresh_token);
      assert.equal(rotated.statusCode, 200, rotated.body);
      assert.deepEqual(await typesOf(t, user.id), ['user.created', 'session.created']);

      assert.equal((await refresh(t, session.refresh_token)).statusCode, 401);
      assert.equal((await refresh(t, session.refresh_token)).statusCode, 401);
      const events = await eventsOf(t, user.id);
      assert.deepEqual(
        events.map((event) => event.type),
        ['user.created', 'session.created', 'session.revoked'],
      );
      assert.deepEqual(events[2]?.data, { session_id: events[1]?.data.session_id, reason: 'refresh_token_reused' });
    });

    test('a password change records user.password_changed and session.revoked for the other sessions only', async () => {
      const user = await t.createUser();
      const sessions = [];
      for (let i = 0; i < 3; i += 1) sessions.push(await t.signIn(user.username, user.password));
      const sessionIds = (await eventsOf(t, user.id))
        .filter((event) => event.type === 'session.created')
        .map((event) => event.data.session_id);
      const response = await changePassword(t, bearer(sessions[0]?.access_token as string), user.password, `changed-${user.password}`);
      assert.equal(response.statusCode, 204, response.body);

      const events = (await eventsOf(t, user.id)).slice(4);
      assert.deepEqual(
        events.map((event) => event.type),
        ['user.password_changed', 'session.revoked', 'session.revoked'],
      );
      assert.deepEqual(events[0]?.data, { user_id: user.id, by: 'self' });
      assert.deepEqual(
        events
          .slice(1)
          .map((event) => event.data.session_id)
          .sort(),
        sessionIds.slice(1).sort(),
      );
      assert.ok(events.slice(1).every((event) => event.data.reason === 'password_changed'));
    });

    test('DELETE records session.revoked for each live session, then user.deleted', async () => {
      const user = await t.createUser();
      const ended = await t.signIn(user.username, user.password);
      await t.signIn(user.username, user.password);
      await t.signIn(user.username, user.password);
      assert.equal((await signOut(t, ended.access_token)).statusCode, 204);
      const before = await eventsOf(t, user.id);
      const live = before
        .filter((event) => event.type === 'session.created')
        .map((event) => event.data.session_id)
        .filter((id) => id !== before.find((event) => event.type === 'session.revoked')?.data.session_id);
      assert.equal(live.length, 2);

      const removed = await t.app.inject({ method: 'DELETE', url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } });
      assert.equal(removed.statusCode, 204, removed.body);
      const events = (await eventsOf(t, user.id)).slice(before.length);
      assert.deepEqual(
        events.map((event) => event.type),
        ['session.revoked', 'session.revoked', 'user.deleted'],
      );
      assert.deepEqual(
        events
          .slice(0, 2)
          .map((event) => event.data.session_id)
          .sort(),
        [...live].sort(),
      );
      assert.ok(events.slice(0, 2).every((event) => event.data.reason === 'user_deleted'));
      assert.equal((events[2]?.data.user as { id?: string } | undefined)?.id, user.id);
    });

    test('deleteOlderThan prunes published events older than the cut-off, or every one when asked', async () => {
      const old = [await t.createUser(), await t.createUser(), await t.createUser()];
      const fresh = await t.createUser();
      const oldIds = (await allEvents(t)).filter((event) => old.some((user) => user.id === event.subject)).map((event) => event.id);
      assert.equal(oldIds.length, 3);
      await ageEvents(t, oldIds, 10);
      await markPublished(t, oldIds.slice(0, 2));
      const cutoff = new Date(Date.now() - 7 * DAY_MS).toISOString();

      assert.equal(await t.services.eventsRepository.deleteOlderThan(cutoff, false), 2);
      let kept = (await allEvents(t)).map((event) => event.id);
      assert.ok(!kept.includes(oldIds[0] as string) && !kept.includes(oldIds[1] as string), 'old published events are gone');
      assert.ok(kept.includes(oldIds[2] as string), 'an old event not yet published is kept');
      assert.equal((await eventsOf(t, fresh.id)).length, 1, 'a recent event is kept');
      assertProblem(await feed(t, `?after=${oldIds[0]}`), 400, 'invalid_request');

      assert.equal(await t.services.eventsRepository.deleteOlderThan(cutoff, true), 1);
      kept = (await allEvents(t)).map((event) => event.id);
      assert.ok(!kept.includes(oldIds[2] as string), 'with includeUnpublished, the old unpublished event goes too');
      assert.equal((await eventsOf(t, fresh.id)).length, 1, 'a recent event is still kept');
    });
  });

  describe(`event retention on ${target}`, { skip }, () => {
    test('without a broker, the hourly housekeeping prunes every event older than the retention', async () => {
      await withHourlyHousekeeping(target, null, async (t, runHousekeeping) => {
        const old = await t.createUser();
        const published = await t.createUser();
        const fresh = await t.createUser();
        const oldIds = (await allEvents(t)).filter((event) => [old.id, published.id].includes(event.subject)).map((event) => event.id);
        await ageEvents(t, oldIds, 8);
        await markPublished(t, oldIds.slice(1));
        await runHousekeeping();
        const subjects = new Set((await allEvents(t)).map((event) => event.subject));
        assert.ok(!subjects.has(old.id) && !subjects.has(published.id), 'every event older than 7 days is gone');
        assert.ok(subjects.has(fresh.id), 'a recent event is kept');
      });
    });

    test('with a broker configured, it prunes only published events older than the retention', async () => {
      // The relay is never started: the broker address only has to be configured.
      await withHourlyHousekeeping(target, 'amqp://guest:guest@127.0.0.1:1', async (t, runHousekeeping) => {
        const pending = await t.createUser();
        const published = await t.createUser();
        const recentPublished = await t.createUser();
        const events = await allEvents(t);
        const idOf = (user: TestUser) => events.find((event) => event.subject === user.id)?.id as string;
        await ageEvents(t, [idOf(pending), idOf(published)], 8);
        await markPublished(t, [idOf(published), idOf(recentPublished)]);
        await runHousekeeping();
        const subjects = new Set((await allEvents(t)).map((event) => event.subject));
        assert.ok(!subjects.has(published.id), 'an old published event is gone');
        assert.ok(subjects.has(pending.id), 'an old event the broker has not confirmed is kept');
        assert.ok(subjects.has(recentPublished.id), 'a recent published event is kept');
      });
    });
  });
}
