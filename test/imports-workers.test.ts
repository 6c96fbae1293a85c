// An import of 10,000 rows shared by two `gatehouse serve` workers on one PostgreSQL database, one of
// them killed (SIGKILL) while it holds a chunk: the database queue (its lease runs out) or RabbitMQ
// (the unacknowledged message is redelivered) hands that chunk to the other worker, and every row
// ends created, skipped or failed exactly once, with counts that match the database. And a worker
// stopped by SIGTERM mid-import ends its chunk and exits, leaving the rest to others. PostgreSQL
// only: SQLite is one file for one machine, so there is no second instance to take over.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, type TestContext, test } from 'node:test';
import argon2 from 'argon2';
import pg from 'pg';
import { amqpSkip, amqpUrl } from './helpers/amqp.js';
import { createTestDatabase, targets } from './helpers/databases.js';
import { bcryptHash, scryptHash, werkzeugHash } from './helpers/hashes.js';
import { deleteQueue } from './helpers/imports.js';
import { killRemainingChildren, type Server, startServer } from './helpers/processes.js';

const ROWS = 10_000;
const EXISTING = 20;
const PASSWORD = 'imported-password-1';
const ADMIN_PASSWORD = 'workers-admin-password-1';
const ADMIN = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;

/** Invalid rows, one kind after another, each with the reason its failure must give. */
const INVALID: { row: (r: number) => unknown; reason: RegExp }[] = [
  { row: (r) => ({ username: `bad${r}`, email: `bad${r}-at-example.com`, password_hash: 'x' }), reason: /email must be a valid/ },
  { row: (r) => ({ email: `bad${r}@example.com`, password: 'long-enough-password' }), reason: /username is missing/ },
  {
    row: (r) => ({ username: `bad${r}`, email: `bad${r}@example.com`, password: 'long-enough-password', password_hash: 'x' }),
    reason: /exactly one of password and password_hash/,
  },
  { row: (r) => ({ username: `bad${r}`, email: `bad${r}@example.com`, password_hash: `md5$${r}$abc` }), reason: /password_hash is not/ },
  { row: (r) => ({ username: `bad${r}`, email: `bad${r}@example.com`, password: 'short' }), reason: /at least 12 characters/ },
  { row: (r) => `{"username": "bad${r}", "email": `, reason: /not valid JSON/ },
  {
    row: (r) => ({ username: `bad${r}`, email: `bad${r}@example.com`, password: 'long-enough-password', roles: ['root'] }),
    reason: /roles must be/,
  },
  {
    row: (r) => ({ username: `bad${r}`, email: `bad${r}@example.com`, password: 'long-enough-password', last_login_at: 'soon' }),
    reason: /last_login_at must be/,
  },
  { row: (r) => ({ username: `b${r % 10}`, email: `bad${r}@example.com`, password: 'long-enough-password' }), reason: /username must be/ },
  { row: (r) => [`bad${r}`], reason: /not a JSON object/ },
];

interface Plan {
  body: string;
  expected: { created: number; skipped: number; failed: number };
  failures: Map<number, RegExp>;
  /** Usernames that must exist afterwards, with the hash they must have (null: an argon2id of a plaintext). */
  created: Map<string, string | null>;
  /** Pairs of usernames (a row and the row that took its email) of which exactly one must exist. */
  eitherOr: [string, string][];
  /** Usernames and emails no row may have created. */
  absentUsernames: string[];
  absentEmails: string[];
  plaintext: { username: string; password: string };
  hashed: { username: string; password: string };
}

/**
 * 10,000 rows: most with an existing hash, a few hundred with a plaintext password, 100 invalid, 40
 * that collide with existing users and 50 pairs that collide with each other (an identical row, or
 * a new username with a taken email) in chunks far apart, so either row of a pair may come first.
 */
async function planImport(): Promise<Plan> {
  const hashes = [
    werkzeugHash(PASSWORD),
    bcryptHash(PASSWORD),
    scryptHash(PASSWORD),
    await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 1024, timeCost: 1, parallelism: 1 }),
  ];
  const rows: unknown[] = [];
  const plan: Omit<Plan, 'body' | 'plaintext' | 'hashed'> = {
    expected: { created: 0, skipped: 0, failed: 0 },
    failures: new Map(),
    created: new Map(),
    eitherOr: [],
    absentUsernames: [],
    absentEmails: [],
  };
  const plaintext: { username: string; password: string }[] = [];
  for (let r = 1; r <= ROWS; r += 1) {
    if (r % 100 === 50) {
      const kind = INVALID[Math.floor(r / 100) % INVALID.length] as (typeof INVALID)[number];
      rows.push(kind.row(r));
      plan.failures.set(r, kind.reason);
      plan.absentEmails.push(`bad${r}@example.com`, `bad${r}-at-example.com`);
      plan.expected.failed += 1;
    } else if (r % 500 === 123) {
      rows.push({ username: `pre${r % EXISTING}`, email: `taken${r}@example.com`, password_hash: hashes[0] });
      plan.absentEmails.push(`taken${r}@example.com`);
      plan.expected.skipped += 1;
    } else if (r % 500 === 373) {
      rows.push({ username: `taken${r}`, email: `pre${r % EXISTING}@example.com`, password_hash: hashes[0] });
      plan.absentUsernames.push(`taken${r}`);
      plan.expected.skipped += 1;
    } else if (r > ROWS / 2 && r % 200 === 77) {
      rows.push(rows[r - ROWS / 2 - 1]);
      plan.expected.skipped += 1;
    } else if (r > ROWS / 2 && r % 200 === 177) {
      const base = r - ROWS / 2;
      rows.push({ username: `emaildup${r}`, email: `imp${base}@example.com`, password_hash: hashes[1] });
      plan.eitherOr.push([`imp${base}`, `emaildup${r}`]);
      plan.created.delete(`imp${base}`);
      plan.expected.skipped += 1;
    } else {
      const username = `imp${r}`;
      if (r % 33 === 0) {
        const password = `plain-${r}-password`;
        rows.push({ username, email: `${username}@example.com`, password });
        plan.created.set(username, null);
        plaintext.push({ username, password });
      } else {
        const hash = hashes[r % hashes.length] as string;
        rows.push({ username, email: `${username}@example.com`, password_hash: hash });
        plan.created.set(username, hash);
      }
      plan.expected.created += 1;
    }
  }
  assert.ok(plaintext.length >= 200, `a few hundred plaintext rows (${plaintext.length})`);
  assert.equal(plan.expected.created + plan.expected.skipped + plan.expected.failed, ROWS);
  const body = `${rows.map((row) => (typeof row === 'string' ? row : JSON.stringify(row))).join('\n')}\n`;
  const safePlaintext = plaintext.find((p) => ![...plan.eitherOr].flat().includes(p.username)) as { username: string; password: string };
  return { ...plan, body, plaintext: safePlaintext, hashed: { username: 'imp1', password: PASSWORD } };
}

async function waitUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(value).slice(0, 300)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A PostgreSQL database for `serve` instances, with a client of its own; close() drops it. */
async function workersDatabase(extraEnv: Record<string, string>) {
  const database = await createTestDatabase('postgres');
  const client = new pg.Client({ connectionString: database.url });
  const servers: Server[] = [];
  const env = {
    DATABASE_URL: database.url,
    GATEHOUSE_PASSWORD_HASH_PROFILE: 'test',
    GATEHOUSE_ADMIN_PASSWORD: ADMIN_PASSWORD,
    GATEHOUSE_RATE_LIMIT_PER_MINUTE: '0',
    GATEHOUSE_LOG_LEVEL: 'error',
    // One chunk at a time per worker, so that a killed worker is known to hold exactly one chunk.
    GATEHOUSE_IMPORT_CONCURRENCY: '1',
    ...extraEnv,
  };
  return {
    client,
    async start(): Promise<Server> {
      const server = await startServer(env);
      servers.push(server);
      if (servers.length === 1) await client.connect();
      return server;
    },
    async close(): Promise<void> {
      await client.end().catch(() => {});
      for (const server of servers) server.child.kill('SIGKILL');
      await killRemainingChildren();
      await database.drop();
    },
  };
}

/** Creates the existing users, uploads the plan's rows, and returns the job id (after the 202). */
async function uploadPlan(base: string, plan: Plan): Promise<string> {
  for (let k = 0; k < EXISTING; k += 1) {
    const response = await fetch(`${base}/v1/users`, {
      method: 'POST',
      headers: { authorization: ADMIN, 'content-type': 'application/json' },
      body: JSON.stringify({ username: `pre${k}`, email: `pre${k}@example.com`, password: `pre-${k}-own-password` }),
    });
    assert.equal(response.status, 201, await response.text());
  }
  const response = await fetch(`${base}/v1/imports`, {
    method: 'POST',
    headers: { authorization: ADMIN, 'content-type': 'application/x-ndjson' },
    body: plan.body,
  });
  const accepted = (await response.json()) as { id: string; rows_read: number };
  assert.equal(response.status, 202, JSON.stringify(accepted));
  assert.equal(accepted.rows_read, ROWS);
  return accepted.id;
}

async function chunkStates(client: pg.Client, jobId: string) {
  const { rows } = await client.query<{ claimed: string; done: string; retried: string }>(
    `select count(*) filter (where status = 'claimed') as claimed, count(*) filter (where status = 'done') as done,
            count(*) filter (where attempts > 1) as retried
       from import_chunks where job_id = $1`,
    [jobId],
  );
  return { claimed: Number(rows[0]?.claimed), done: Number(rows[0]?.done), retried: Number(rows[0]?.retried) };
}

/** Waits (bounded) for the job to complete, then checks every count against the plan and the database. */
async function assertImportOutcome(client: pg.Client, base: string, jobId: string, plan: Plan): Promise<void> {
  const readJob = async () => {
    const status = await fetch(`${base}/v1/imports/${jobId}`, { headers: { authorization: ADMIN } });
    assert.equal(status.status, 200);
    return (await status.json()) as {
      status: string;
      rows_read: number;
      created: number;
      skipped: number;
      failed: number;
      failures: { row: number; reason: string }[];
    };
  };
  const job = await waitUntil(readJob, (j) => j.status !== 'queued', 'the import to complete', 45_000);
  assert.equal(job.status, 'completed');
  assert.equal(job.rows_read, ROWS);
  assert.deepEqual({ created: job.created, skipped: job.skipped, failed: job.failed }, plan.expected);
  assert.equal(job.created + job.skipped + job.failed, job.rows_read);
  assert.deepEqual(
    job.failures.map((failure) => failure.row),
    [...plan.failures.keys()],
    'every failed row, listed once, with its row number',
  );
  for (const failure of job.failures) assert.match(failure.reason, plan.failures.get(failure.row) as RegExp, `row ${failure.row}`);

  const { rows: chunks } = await client.query<{ total: string; open: string }>(
    `select count(*) as total, count(*) filter (where status <> 'done' or rows is not null) as open
       from import_chunks where job_id = $1`,
    [jobId],
  );
  assert.deepEqual(chunks[0], { total: String(ROWS / 500), open: '0' }, 'every chunk is done and its rows are deleted');

  const { rows: users } = await client.query<{ username: string; email: string; password_hash: string }>(
    'select username, email, password_hash from users',
  );
  assert.equal(users.length, 1 + EXISTING + plan.expected.created, 'users created = the job’s created count');
  const byUsername = new Map(users.map((user) => [user.username, user]));
  const emails = new Set(users.map((user) => user.email));
  for (const [username, hash] of plan.created) {
    const user = byUsername.get(username);
    assert.ok(user, `${username} was created`);
    if (hash === null) assert.match(user.password_hash, /^\$argon2id\$/, `${username}: the plaintext was hashed`);
    else assert.equal(user.password_hash, hash, `${username}: the hash is kept`);
  }
  for (const [base, other] of plan.eitherOr) {
    const found = [base, other].filter((username) => byUsername.has(username));
    assert.equal(found.length, 1, `exactly one of ${base} and ${other}`);
  }
  assert.equal(plan.created.size + plan.eitherOr.length, plan.expected.created);
  for (const username of plan.absentUsernames) assert.ok(!byUsername.has(username), `${username} was not created`);
  for (const email of plan.absentEmails) assert.ok(!emails.has(email), `${email} was not created`);
  for (let k = 0; k < EXISTING; k += 1) assert.equal(byUsername.get(`pre${k}`)?.email, `pre${k}@example.com`);

  const { rows: events } = await client.query<{ events: string; subjects: string; of_users: string }>(
    `select count(*) as events, count(distinct e.subject) as subjects, count(u.id) as of_users
       from outbox_events e left join users u on u.id = e.subject
      where e.type = 'user.created' and e.data like $1`,
    [`%"import_id":"${jobId}"%`],
  );
  const created = String(plan.expected.created);
  assert.deepEqual(events[0], { events: created, subjects: created, of_users: created }, 'one user.created per created user');

  for (const { username, password } of [plan.plaintext, plan.hashed]) {
    const signIn = await fetch(`${base}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    assert.equal(signIn.status, 201, `${username}: ${await signIn.text()}`);
  }
}

/**
 * Starts two workers, imports the plan through the first, kills the second mid-chunk, and checks the
 * outcome. The kill can race with a COMMIT the victim sent just before it was frozen: that chunk is
 * then done by the victim after all and nothing is left to take over (retried 0; CI saw it once). The
 * import is still complete and correct, which is checked, but the takeover was not exercised, so the
 * scenario runs again on a new database, up to three times. A takeover that never works fails every
 * time: the import never completes (a chunk stays claimed by a dead worker), or nothing is retried.
 */
async function importWithKilledWorker(context: TestContext, extraEnv: Record<string, string>): Promise<void> {
  const attempts = 3;
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    const retried = await killOneWorkerMidImport(extraEnv);
    if (retried >= 1) return;
    if (attempt < attempts) {
      context.diagnostic(`attempt ${attempt}: the killed worker's chunk was done by a COMMIT already sent; running the scenario again`);
    }
  }
  assert.fail(`in ${attempts} attempts the killed worker never left a chunk that another one took over`);
}

/** One attempt of importWithKilledWorker: returns how many chunks were claimed more than once. */
async function killOneWorkerMidImport(extraEnv: Record<string, string>): Promise<number> {
  const workers = await workersDatabase(extraEnv);
  try {
    const uploader = await workers.start();
    const victim = await workers.start();
    const plan = await planImport();
    const jobId = await uploadPlan(uploader.base, plan);

    // Both workers hold a chunk (one each: a worker takes one at a time), and some are done: kill one.
    // The victim is frozen (SIGSTOP) before each look, so nothing changes on its side between the look
    // and the kill (but for a COMMIT already on its way): the uploader holds at most one chunk, so two
    // claimed chunks mean the frozen victim holds the other.
    const read = () => chunkStates(workers.client, jobId);
    const holding = (s: Awaited<ReturnType<typeof read>>) => s.claimed === 2 && s.done >= 2;
    const frozenLook = async () => {
      victim.child.kill('SIGSTOP');
      const states = await read();
      if (!holding(states)) victim.child.kill('SIGCONT');
      return states;
    };
    await waitUntil(frozenLook, holding, 'both workers to hold a chunk', 30_000);
    victim.child.kill('SIGKILL');
    assert.equal(await victim.exited, 'SIGKILL');

    await assertImportOutcome(workers.client, uploader.base, jobId, plan);
    return (await read()).retried;
  } finally {
    await workers.close();
  }
}

function uniqueQueue(): string {
  return `gatehouse.imports.test.${process.pid}.${randomBytes(6).toString('hex')}`;
}

const postgres = (await targets()).find((t) => t.target === 'postgres');
const rabbitSkip = await amqpSkip();

describe('import workers in `gatehouse serve` instances sharing a database (PostgreSQL only: SQLite is one file for one machine)', {
  skip: postgres?.skip ?? 'no PostgreSQL target',
}, () => {
  after(() => killRemainingChildren());

  test('two workers, one killed mid-import, with the database queue: its chunk is taken over when its lease ends', async (context) => {
    await importWithKilledWorker(context, { GATEHOUSE_IMPORT_LEASE_SECONDS: '2' });
  });

  test('SIGTERM mid-import: the worker ends its chunk and the instance exits 0 at once; another instance finishes the job', async () => {
    const workers = await workersDatabase({ GATEHOUSE_SHUTDOWN_TIMEOUT_SECONDS: '5' });
    try {
      const first = await workers.start();
      const plan = await planImport();
      const jobId = await uploadPlan(first.base, plan);
      await waitUntil(
        () => chunkStates(workers.client, jobId),
        (s) => s.done >= 1,
        'a chunk to be done',
        30_000,
      );
      first.child.kill('SIGTERM');
      assert.equal(await first.exited, 0, 'a clean exit, not the shutdown timeout');
      const left = await chunkStates(workers.client, jobId);
      assert.equal(left.claimed, 0, 'no chunk is left claimed by the stopped worker');
      assert.ok(left.done < ROWS / 500, 'the rest of the import was left to other workers, not worked through before exiting');

      const second = await workers.start();
      await assertImportOutcome(workers.client, second.base, jobId, plan);
    } finally {
      await workers.close();
    }
  });

  test('two workers, one killed mid-import, with RabbitMQ: its chunk is redelivered to the other worker', {
    skip: rabbitSkip,
  }, async (context) => {
    const queue = uniqueQueue();
    try {
      // A lease far beyond the wait: only a redelivered message can get the chunk done in time.
      await importWithKilledWorker(context, {
        AMQP_URL: amqpUrl(),
        AMQP_IMPORT_QUEUE: queue,
        GATEHOUSE_RELAY_ENABLED: 'false',
        GATEHOUSE_IMPORT_LEASE_SECONDS: '120',
      });
    } finally {
      await deleteQueue(queue);
    }
  });
});
