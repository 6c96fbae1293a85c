// Bulk import over HTTP on every database target: POST /v1/imports with NDJSON and CSV, GET
// /v1/imports/{id}, rows that fail one by one with their row numbers, duplicates skipped, refusals
// (401, 403, 404, 413, 415), and imported werkzeug/bcrypt/scrypt hashes that sign in and become
// argon2id. The command line is in imports-cli.test.ts, workers killed mid-import in imports-workers.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import argon2 from 'argon2';
import { toIso } from '../src/lib/time.js';
import { MAX_STORED_FAILURES } from '../src/modules/imports/imports.repository.js';
import { CHUNK_ROWS, CHUNKS_PER_COMMIT } from '../src/modules/imports/imports.service.js';
import { buildTestApp, problem, type TestApp, uniqueName } from './helpers/app.js';
import { targets } from './helpers/databases.js';
import { bcryptHash, scryptHash, werkzeugHash } from './helpers/hashes.js';
import { importEvents, ndjson, signIn, storedHash, upload, usernamesLike } from './helpers/imports.js';

interface ImportStatus {
  id: string;
  status: string;
  format: string;
  rows_read: number;
  created: number;
  skipped: number;
  failed: number;
  failures: { row: number; reason: string }[];
  error: string | null;
  finished_at: string | null;
}

const PASSWORD = 'imported-password-1';
const HASH = werkzeugHash(PASSWORD);
const IMPORT_MAX_BYTES = 1024 * 1024;
/** The rows of an upload's first commit of chunks. */
const ROWS_PER_COMMIT = CHUNKS_PER_COMMIT * CHUNK_ROWS;

async function jobStatus(t: TestApp, id: string): Promise<ImportStatus> {
  const response = await t.app.inject({ url: `/v1/imports/${id}`, headers: { authorization: t.adminBasic } });
  assert.equal(response.statusCode, 200, response.body);
  return response.json();
}

/** Uploads, checks the 202 and its Location, lets the worker process every chunk, and returns the job. */
async function importRows(t: TestApp, body: string, contentType = 'application/x-ndjson'): Promise<ImportStatus> {
  const response = await upload(t, body, contentType);
  assert.equal(response.statusCode, 202, response.body);
  const accepted = response.json() as ImportStatus;
  assert.equal(response.headers.location, `/v1/imports/${accepted.id}`);
  await t.services.importWorker.drain();
  return jobStatus(t, accepted.id);
}

function counts(job: ImportStatus) {
  return { status: job.status, rows_read: job.rows_read, created: job.created, skipped: job.skipped, failed: job.failed };
}

async function jobCount(t: TestApp): Promise<number> {
  const row = await t.services.database.db
    .selectFrom('import_jobs')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

for (const { target, skip } of await targets()) {
  describe(`POST /v1/imports on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target, { importMaxBytes: IMPORT_MAX_BYTES });
    });
    after(async () => t?.close());

    test('imports NDJSON: 202 with the job, then every user with its fields, signing in, each with one user.created', async () => {
      const alice = uniqueName('alice');
      const bob = uniqueName('bob');
      const bobHash = await argon2.hash('bob-password-is-long', { type: argon2.argon2id, memoryCost: 1024, timeCost: 1, parallelism: 1 });
      const body = ndjson([
        {
          username: alice,
          email: `${alice}@Example.COM`,
          password: 'alice-password-is-long',
          display_name: 'Alice A.',
          roles: ['admin', 'user'],
          last_login_at: '2026-11-01T12:00:00+02:00',
        },
        { username: bob, email: `${bob}@example.com`, password_hash: bobHash },
      ]);
      const response = await upload(t, body);
      assert.equal(response.statusCode, 202, response.body);
      const accepted = response.json() as ImportStatus;
      assert.equal(response.headers.location, `/v1/imports/${accepted.id}`);
      assert.deepEqual(counts(accepted), { status: 'queued', rows_read: 2, created: 0, skipped: 0, failed: 0 });
      assert.equal(accepted.format, 'ndjson');

      await t.services.importWorker.drain();
      const job = await jobStatus(t, accepted.id);
      assert.deepEqual(counts(job), { status: 'completed', rows_read: 2, created: 2, skipped: 0, failed: 0 });
      assert.deepEqual(job.failures, []);
      assert.ok(job.finished_at);

      const storedAlice = await t.services.usersRepository.findByUsername(alice);
      assert.ok(storedAlice);
      assert.equal(storedAlice.email, `${alice}@example.com`);
      assert.equal(storedAlice.display_name, 'Alice A.');
      assert.equal(storedAlice.roles, 'admin,user');
      assert.equal(toIso(storedAlice.last_login_at), '2026-11-01T10:00:00.000Z');
      assert.match(storedAlice.password_hash, /^\$argon2id\$/, 'a plaintext password is hashed by the worker');
      assert.equal(await storedHash(t, bob), bobHash, 'an argon2id hash is kept as it was');

      const aliceSession = await signIn(t, alice, 'alice-password-is-long');
      assert.equal(aliceSession.statusCode, 201, aliceSession.body);
      assert.deepEqual(aliceSession.json().user.roles, ['admin', 'user']);
      assert.equal((await signIn(t, bob, 'bob-password-is-long')).statusCode, 201);

      const events = await importEvents(t, job.id);
      const bobId = (await t.services.usersRepository.findByUsername(bob))?.id;
      assert.deepEqual(events.map((event) => event.subject).sort(), [storedAlice.id, bobId].sort(), 'one user.created per imported user');
      for (const event of events) {
        assert.equal(event.data.user?.id, event.subject);
        assert.equal(event.data.import_id, job.id);
        assert.ok(!/password|argon2/.test(JSON.stringify(event)), 'no password or hash in the event');
      }
    });

    test("a chunk's users and their events go in in row order, with every character of their fields kept", async () => {
      const names = Array.from({ length: 30 }, () => uniqueName('order'));
      const awkward = ['a "quoted", {braced} \\ back\\slash', 'NULL', 'née Ōtsuka 😀', "semi;colon 'single'"];
      const rows = names.map((username, n) => ({
        username,
        email: `${username}@example.com`,
        password_hash: HASH,
        ...(n < awkward.length ? { display_name: awkward[n] } : {}),
        ...(n % 2 === 0 ? { last_login_at: '2026-11-01T10:00:00.123Z' } : {}),
      }));
      const job = await importRows(t, ndjson(rows));
      assert.equal(job.created, names.length);
      const events = await importEvents(t, job.id);
      assert.deepEqual(
        events.map((event) => event.data.user?.username),
        names,
        'events in row order',
      );
      assert.deepEqual(
        events.slice(0, awkward.length).map((event) => event.data.user?.display_name),
        awkward,
        "the events' data keep every character",
      );
      // The stored data is the compact JSON the recorder made, character for character.
      const stored = await t.services.database.db
        .selectFrom('outbox_events')
        .select('data')
        .where(
          'subject',
          'in',
          events.map((event) => event.subject),
        )
        .execute();
      assert.equal(stored.length, names.length);
      for (const { data } of stored) assert.equal(data, JSON.stringify(JSON.parse(data)));
      for (const [n, username] of names.entries()) {
        const stored = await t.services.usersRepository.findByUsername(username);
        assert.ok(stored);
        assert.equal(stored.display_name, awkward[n] ?? null);
        assert.equal(toIso(stored.last_login_at), n % 2 === 0 ? '2026-11-01T10:00:00.123Z' : null);
        assert.equal(stored.password_hash, HASH);
      }
      const created = await t.services.database.db
        .selectFrom('users')
        .select(['username', 'created_at'])
        .where('username', 'in', names)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      assert.deepEqual(
        created.map((row) => row.username),
        names,
        'ids and creation times follow the rows',
      );
    });

    test('imports CSV with quoted fields, a quoted comma, "" escapes, roles admin;user and CRLF line ends', async () => {
      const carol = uniqueName('carol');
      const dave = uniqueName('dave');
      const erin = uniqueName('erin');
      const body = [
        'username,email,display_name,roles,password,password_hash',
        `${carol},${carol}@example.com,"Carol ""CJ"" Jones, PhD",admin;user,"pass, with ""quotes"" 1",`,
        `"${dave}","${dave}@example.com",Dave,user,dave-password-is-long,`,
        `${erin},${erin}@example.com,,,,${werkzeugHash('erin-password-is-long')}`,
      ].join('\r\n');
      const job = await importRows(t, `${body}\r\n`, 'text/csv; charset=utf-8');
      assert.deepEqual(counts(job), { status: 'completed', rows_read: 3, created: 3, skipped: 0, failed: 0 });
      assert.equal(job.format, 'csv');

      const storedCarol = await t.services.usersRepository.findByUsername(carol);
      assert.ok(storedCarol);
      assert.equal(storedCarol.display_name, 'Carol "CJ" Jones, PhD');
      assert.equal(storedCarol.roles, 'admin,user');
      assert.equal((await signIn(t, carol, 'pass, with "quotes" 1')).statusCode, 201, 'the quoted password, unescaped');
      const storedDave = await t.services.usersRepository.findByUsername(dave);
      assert.equal(storedDave?.roles, 'user');
      assert.equal(storedDave?.email, `${dave}@example.com`);
      assert.equal((await signIn(t, dave, 'dave-password-is-long')).statusCode, 201, 'no carriage return is left in the last field');
      const storedErin = await t.services.usersRepository.findByUsername(erin);
      assert.equal(storedErin?.display_name, null);
      assert.equal(storedErin?.roles, 'user', 'an empty roles field gives the default role');
      assert.equal((await signIn(t, erin, 'erin-password-is-long')).statusCode, 201);
      assert.equal((await importEvents(t, job.id)).length, 3);
    });

    test('an empty body, or a CSV header alone, is a completed job of no rows', async () => {
      for (const [body, contentType] of [
        ['', 'application/x-ndjson'],
        ['', 'text/csv'],
        ['username,email,password\r\n', 'text/csv'],
        ['\n\n', 'application/x-ndjson'],
      ] as const) {
        const job = await importRows(t, body, contentType);
        assert.deepEqual(counts(job), { status: 'completed', rows_read: 0, created: 0, skipped: 0, failed: 0 }, JSON.stringify(body));
      }
    });

    test('malformed NDJSON rows fail one by one with their row number and reason (not the request); the other rows are imported', async () => {
      const name = (row: number) => uniqueName(`bad${row}x`);
      const first = uniqueName('good');
      const last = uniqueName('good');
      const long = 'long-enough-password-1';
      const rows: unknown[] = [
        { username: first, email: `${first}@example.com`, password: long },
        '{"username": "broken"',
        '["an", "array"]',
        { email: `${name(4)}@example.com`, password: long },
        { username: name(5), password: long },
        { username: name(6), email: 'not-an-email', password: long },
        { username: name(7), email: `${name(7)}@example.com`, password: long, password_hash: HASH },
        { username: name(8), email: `${name(8)}@example.com` },
        { username: name(9), email: `${name(9)}@example.com`, password_hash: 'md5$abc$0123456789abcdef' },
        { username: name(10), email: `${name(10)}@example.com`, password: 'short' },
        { username: name(11), email: `${name(11)}@example.com`, password: long, roles: ['superuser'] },
        { username: name(12), email: `${name(12)}@example.com`, password: long, last_login_at: 'yesterday' },
        { username: 'x', email: `x${name(13)}@example.com`, password: long },
        { username: name(14), email: `${name(14)}@example.com`, password: long, display_name: 'nul\u0000byte' },
        { username: name(15), email: `${name(15)}\u0000@example.com`, password: long },
        { username: name(16), email: `${name(16)}@example.com`, password: long, last_login_at: '0000-01-01T00:00:00Z' },
        { username: name(17), email: `${name(17)}@example.com`, password: long, last_login_at: '+275760-09-13T00:00:00Z' },
        '',
        { username: last, email: `${last}@example.com`, password_hash: HASH },
      ];
      const job = await importRows(t, ndjson(rows));
      assert.deepEqual(counts(job), { status: 'completed', rows_read: 18, created: 2, skipped: 0, failed: 16 });
      const reasons: [number, RegExp][] = [
        [2, /not valid JSON/],
        [3, /not a JSON object/],
        [4, /username is missing/],
        [5, /email is missing/],
        [6, /email must be a valid email address/],
        [7, /exactly one of password and password_hash/],
        [8, /exactly one of password and password_hash/],
        [9, /password_hash is not an argon2, scrypt, bcrypt or werkzeug/],
        [10, /at least 12 characters/],
        [11, /roles must be/],
        [12, /last_login_at must be/],
        [13, /username must be 3-32 characters/],
        [14, /display_name must not contain a NUL character/],
        [15, /email must not contain a NUL character/],
        [16, /last_login_at must be/],
        [17, /last_login_at must be/],
      ];
      assert.deepEqual(
        job.failures.map((failure) => failure.row),
        reasons.map(([row]) => row),
      );
      for (const [row, reason] of reasons) assert.match(job.failures.find((failure) => failure.row === row)?.reason ?? '', reason);
      assert.equal((await signIn(t, first, long)).statusCode, 201);
      assert.equal((await signIn(t, last, PASSWORD)).statusCode, 201);
      assert.deepEqual(await usernamesLike(t, 'bad'), [], 'no failed row created a user');
    });

    test('a job keeps the first MAX_STORED_FAILURES failed rows, and counts them all', async () => {
      // Five chunks, four of them processed at once (the lanes of one worker), so that they race for the room.
      const rows = CHUNK_ROWS * 4 + 100;
      const lines: unknown[] = [];
      for (let row = 1; row <= rows; row++) lines.push({ username: uniqueName(`cap${row}x`), email: 'not-an-email', password_hash: HASH });
      const job = await importRows(t, ndjson(lines));
      assert.deepEqual(counts(job), { status: 'completed', rows_read: rows, created: 0, skipped: 0, failed: rows });
      const stored = await t.services.database.db
        .selectFrom('import_failures')
        .select(['row_number'])
        .where('job_id', '=', job.id)
        .orderBy('row_number')
        .execute();
      assert.equal(stored.length, MAX_STORED_FAILURES);
      // Chunks may finish in any order; each keeps its own rows in order, up to the room left.
      assert.ok(stored.every((failure) => failure.row_number >= 1 && failure.row_number <= rows));
    });

    test('malformed CSV rows (a wrong field count, an unterminated quote) fail with their row numbers', async () => {
      const good = uniqueName('csvok');
      const body = [
        'username,email,password',
        `${good},${good}@example.com,long-enough-password-1`,
        'too,many,fields,here',
        `"${uniqueName('open')},x@example.com,long-enough-password-1`,
        `${uniqueName('swallowed')},y@example.com,long-enough-password-1`,
      ].join('\r\n');
      const job = await importRows(t, body, 'text/csv');
      assert.deepEqual(counts(job), { status: 'completed', rows_read: 3, created: 1, skipped: 0, failed: 2 });
      assert.equal(job.failures[0]?.row, 2);
      assert.match(job.failures[0]?.reason ?? '', /4 fields; the header has 3/);
      assert.equal(job.failures[1]?.row, 3);
      assert.match(job.failures[1]?.reason ?? '', /ends inside a quoted field/);
      assert.equal(job.failures.length, 2);
    });

    test('rows whose username or email exists are skipped, also within one upload, and importing again creates nothing', async () => {
      const existing = await t.createUser();
      const fresh = uniqueName('fresh');
      const other = uniqueName('other');
      const body = ndjson([
        { username: existing.username, email: `${other}@example.com`, password_hash: HASH },
        { username: other, email: existing.email.toUpperCase(), password_hash: HASH },
        { username: fresh, email: `${fresh}@example.com`, password_hash: HASH },
        { username: fresh, email: `${fresh}.second@example.com`, password: 'another-password-12' },
        { username: uniqueName('third'), email: `${fresh}@example.com`, password_hash: HASH },
      ]);
      const before = await t.services.usersRepository.findById(existing.id);
      const job = await importRows(t, body);
      assert.deepEqual(counts(job), { status: 'completed', rows_read: 5, created: 1, skipped: 4, failed: 0 });
      assert.deepEqual(await t.services.usersRepository.findById(existing.id), before, 'the existing user is untouched');
      assert.equal((await signIn(t, existing.username, existing.password)).statusCode, 201);
      assert.equal(await t.services.usersRepository.findByUsername(other), undefined);
      assert.equal((await signIn(t, fresh, PASSWORD)).statusCode, 201, 'the first row of a username wins within one upload');
      const events = await importEvents(t, job.id);
      assert.deepEqual(
        events.map((event) => event.data.user?.username),
        [fresh],
      );

      const again = await importRows(t, body);
      assert.deepEqual(counts(again), { status: 'completed', rows_read: 5, created: 0, skipped: 5, failed: 0 });
      assert.deepEqual(await importEvents(t, again.id), []);
    });

    test('anonymous callers get 401, non-admins 403, an unknown content type 415, and no job is made', async () => {
      const before = await jobCount(t);
      const body = ndjson([{ username: uniqueName('refused'), email: 'refused@example.com', password_hash: HASH }]);
      const user = await t.createUser();

      const anonymous = await t.app.inject({
        method: 'POST',
        url: '/v1/imports',
        headers: { 'content-type': 'application/x-ndjson' },
        payload: body,
      });
      assert.equal(anonymous.statusCode, 401, anonymous.body);
      assert.equal(problem(anonymous).code, 'unauthorized');
      const forbidden = await upload(t, body, 'application/x-ndjson', t.basic(user.username, user.password));
      assert.equal(forbidden.statusCode, 403, forbidden.body);
      assert.equal(problem(forbidden).code, 'forbidden');
      for (const contentType of ['application/xml', 'application/json', 'text/plain']) {
        const unsupported = await upload(t, body, contentType);
        assert.equal(unsupported.statusCode, 415, `${contentType}: ${unsupported.body}`);
        assert.equal(problem(unsupported).code, 'unsupported_media_type');
        assert.match(problem(unsupported).contentType, /^application\/problem\+json/);
      }
      assert.equal(await jobCount(t), before);

      const job = await importRows(t, ndjson([]));
      const read = (authorization?: string) =>
        t.app.inject({ url: `/v1/imports/${job.id}`, headers: authorization ? { authorization } : {} });
      assert.equal((await read()).statusCode, 401);
      assert.equal((await read(t.basic(user.username, user.password))).statusCode, 403);
    });

    test('GET of an unknown import is 404', async () => {
      for (const id of ['01a220c1-f5e6-7000-95c9-4c0573e04dca', 'not-an-id']) {
        const response = await t.app.inject({ url: `/v1/imports/${id}`, headers: { authorization: t.adminBasic } });
        assert.equal(response.statusCode, 404, response.body);
        assert.equal(problem(response).code, 'not_found');
      }
    });

    test('a body over GATEHOUSE_IMPORT_MAX_BYTES is refused with 413, with or without a Content-Length, and imports nothing', async () => {
      const prefix = uniqueName('over');
      const lines = Array.from({ length: 6_000 }, (_, i) =>
        JSON.stringify({ username: `${prefix}n${i}`, email: `${prefix}n${i}@example.com`, password_hash: HASH }),
      );
      const body = `${lines.join('\n')}\n`;
      // An upload stores its chunks CHUNKS_PER_COMMIT at a time: the first commit comes before the cut.
      const firstCommitBytes = lines.slice(0, ROWS_PER_COMMIT + 1).join('\n').length;
      assert.ok(
        firstCommitBytes < IMPORT_MAX_BYTES && body.length > IMPORT_MAX_BYTES,
        "a commit's rows fit under the limit; the body does not",
      );
      const jobsBefore = await jobCount(t);
      const withLength = await upload(t, body);
      assert.equal(withLength.statusCode, 413, withLength.body);
      assert.equal(problem(withLength).code, 'payload_too_large');
      assert.equal(await jobCount(t), jobsBefore, 'a declared length over the limit is refused before any row is read');
      // A streamed body (no Content-Length) is cut when it crosses the limit, after chunks of rows were stored.
      const pieces = Array.from({ length: Math.ceil(body.length / 8192) }, (_, i) => Buffer.from(body.slice(i * 8192, (i + 1) * 8192)));
      const streamed = await upload(t, Readable.from(pieces));
      assert.equal(streamed.statusCode, 413, streamed.body);
      assert.equal(problem(streamed).code, 'payload_too_large');
      const cut = await t.services.database.db
        .selectFrom('import_jobs')
        .select(['status', 'rows_read'])
        .orderBy('id', 'desc') // UUIDv7: the latest job
        .executeTakeFirstOrThrow();
      assert.equal(cut.status, 'failed');
      assert.ok(Number(cut.rows_read) >= ROWS_PER_COMMIT, `chunks were stored before the cut (rows_read ${cut.rows_read})`);
      // One streamed piece over the limit: the limit is crossed before the parser starts reading.
      const oneBigPiece = await upload(t, Readable.from([Buffer.from(body)]));
      assert.equal(oneBigPiece.statusCode, 413, oneBigPiece.body);
      assert.equal(problem(oneBigPiece).code, 'payload_too_large');

      await t.services.importWorker.drain();
      assert.deepEqual(await usernamesLike(t, prefix), [], 'no row of a refused upload is imported');
      const leftRows = await t.services.database.db.selectFrom('import_chunks').select('job_id').where('rows', 'is not', null).execute();
      assert.deepEqual(leftRows, [], 'no stored rows are left behind');
      assert.equal((await t.app.inject({ url: '/healthz' })).statusCode, 200);
    });

    test('no chunk of an upload is imported before the whole upload is stored, so a 413 half-way imports nothing', async () => {
      const prefix = uniqueName('half');
      const lines = Array.from({ length: 6_000 }, (_, i) =>
        JSON.stringify({ username: `${prefix}n${i}`, email: `${prefix}n${i}@example.com`, password_hash: HASH }),
      );
      const body = `${lines.join('\n')}\n`;
      let workerRuns = 0;
      // A slow client: between pieces, a worker looks for work, as the ones in other instances would.
      async function* slowPieces() {
        for (let i = 0; i * 8192 < body.length; i++) {
          yield Buffer.from(body.slice(i * 8192, (i + 1) * 8192));
          workerRuns += 1;
          await t.services.importWorker.drain();
        }
      }
      const streamed = await upload(t, Readable.from(slowPieces()));
      assert.equal(streamed.statusCode, 413, streamed.body);
      assert.ok(workerRuns > 2, 'workers looked for work while the upload was arriving');
      await t.services.importWorker.drain();
      assert.deepEqual(await usernamesLike(t, prefix), [], 'no row of the refused upload is imported');
    });

    test('imported werkzeug, bcrypt and scrypt hashes sign in and are replaced by argon2id then', async () => {
      const formats: [string, (password: string) => string][] = [
        ['werkzeug pbkdf2:sha256:1000', (password) => werkzeugHash(password)],
        ['werkzeug pbkdf2:sha256:260000', (password) => werkzeugHash(password, 260_000)],
        ['bcrypt $2a$', (password) => bcryptHash(password, '2a')],
        ['bcrypt $2b$', (password) => bcryptHash(password, '2b')],
        ['bcrypt $2y$', (password) => bcryptHash(password, '2y')],
        ['scrypt PHC', (password) => scryptHash(password)],
      ];
      const users = formats.map(([format, make]) => {
        const username = uniqueName('legacy');
        const password = `${username}-old-password`;
        return { format, username, password, hash: make(password) };
      });
      const job = await importRows(
        t,
        ndjson(users.map((user) => ({ username: user.username, email: `${user.username}@example.com`, password_hash: user.hash }))),
      );
      assert.deepEqual(counts(job), { status: 'completed', rows_read: users.length, created: users.length, skipped: 0, failed: 0 });
      for (const user of users) {
        assert.equal(await storedHash(t, user.username), user.hash, `${user.format}: stored as imported`);
        assert.equal((await signIn(t, user.username, `${user.password}x`)).statusCode, 401, `${user.format}: a wrong password`);
        assert.equal(await storedHash(t, user.username), user.hash, `${user.format}: a failed sign-in changes nothing`);
        const response = await signIn(t, user.username, user.password);
        assert.equal(response.statusCode, 201, `${user.format}: ${response.body}`);
        const upgraded = await storedHash(t, user.username);
        assert.match(upgraded, /^\$argon2id\$/, `${user.format}: rehashed to argon2id`);
        assert.ok(await argon2.verify(upgraded, user.password), `${user.format}: the new hash is of the same password`);
        assert.equal((await signIn(t, user.username, user.password)).statusCode, 201, `${user.format}: signs in again`);
      }
    });
  });
}
