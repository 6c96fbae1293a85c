// The command line on every database target: `gatehouse import FILE` (NDJSON, CSV) with its progress
// bar and summary, `gatehouse import --from-origin-sqlite PATH` on a database shaped like the origin
// Flask service's, and `gatehouse import` with AMQP_URL set (it waits for the rows, then reports).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { toIso } from '../src/lib/time.js';
import { amqpSkip, amqpUrl } from './helpers/amqp.js';
import { buildTestApp, uniqueName } from './helpers/app.js';
import { createTestDatabase, targets } from './helpers/databases.js';
import { bcryptHash, werkzeugHash } from './helpers/hashes.js';
import { deleteQueue, importEvents, ndjson, signIn, storedHash } from './helpers/imports.js';
import { killRemainingChildren, runGatehouse } from './helpers/processes.js';

const PASSWORD = 'imported-password-1';

for (const { target, skip } of await targets()) {
  describe(`gatehouse import on ${target}`, { skip }, () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'gatehouse-import-'));
    });
    after(async () => {
      await killRemainingChildren();
      rmSync(dir, { recursive: true, force: true });
    });

    test('imports an NDJSON and a CSV file with a progress bar on stderr and a summary on stdout; exit 1 when rows failed', async () => {
      const database = await createTestDatabase(target);
      try {
        const env = { DATABASE_URL: database.url, GATEHOUSE_PASSWORD_HASH_PROFILE: 'test' };
        const plain = uniqueName('plain');
        const hashed = uniqueName('hashed');
        const broken = uniqueName('broken');
        const quoted = uniqueName('quoted');
        const csvHashed = uniqueName('csvhash');
        const ndjsonFile = join(dir, 'users.ndjson');
        writeFileSync(
          ndjsonFile,
          ndjson([
            { username: plain, email: `${plain}@example.com`, password: 'plain-password-is-long' },
            { username: hashed, email: `${hashed}@example.com`, password_hash: werkzeugHash('hashed-password-is-long') },
            { username: broken, email: 'broken-at-example.com', password: 'broken-password-is-long' },
          ]),
        );
        const first = await runGatehouse(['import', ndjsonFile], env);
        assert.equal(first.code, 1, first.stderr);
        assert.match(first.stderr, /\[#{30}\] 3\/3 rows: 2 created, 0 skipped, 1 failed/);
        const summary = /^import ([0-9a-f-]{36}): 3 rows read, 2 created, 0 skipped, 1 failed$/m.exec(first.stdout);
        assert.ok(summary, first.stdout);
        assert.match(first.stdout, /^ {2}row 3: email must be a valid email address$/m);

        const csvFile = join(dir, 'users.csv');
        writeFileSync(
          csvFile,
          `username,email,password,password_hash\r\n${quoted},"${quoted}@example.com","a, ""quoted"" password",\r\n${csvHashed},${csvHashed}@example.com,,${bcryptHash('csv-password-is-long')}\r\n`,
        );
        const second = await runGatehouse(['import', csvFile], env);
        assert.equal(second.code, 0, second.stderr);
        assert.match(second.stderr, /\[#{30}\] 2\/2 rows: 2 created, 0 skipped, 0 failed/);
        assert.match(second.stdout, /^import [0-9a-f-]{36}: 2 rows read, 2 created, 0 skipped, 0 failed$/m);

        const t = await buildTestApp(target, {}, { database, keepDatabase: true });
        try {
          assert.equal((await signIn(t, plain, 'plain-password-is-long')).statusCode, 201);
          assert.equal((await signIn(t, hashed, 'hashed-password-is-long')).statusCode, 201);
          assert.equal((await signIn(t, quoted, 'a, "quoted" password')).statusCode, 201);
          assert.equal((await signIn(t, csvHashed, 'csv-password-is-long')).statusCode, 201);
          assert.equal(await t.services.usersRepository.findByUsername(broken), undefined);
          const events = await importEvents(t, summary[1] as string);
          assert.deepEqual(events.map((event) => event.data.user?.username).sort(), [hashed, plain].sort());
        } finally {
          await t.close();
        }
      } finally {
        await database.drop();
      }
    });

    test('--from-origin-sqlite imports the origin users table, keeping last_login as UTC; they sign in with their old passwords', async () => {
      const database = await createTestDatabase(target);
      try {
        const originFile = join(dir, `origin-${target}.db`);
        const origin = new SqliteDatabase(originFile);
        origin.exec('create table users(id integer primary key, username text, email text, password_hash text, last_login text)');
        const users = [
          { id: 1, username: 'olivia', password: 'olivia-old-password', iterations: 1_000, lastLogin: '2026-11-01 10:00:00.123456' },
          { id: 2, username: 'Oscar.Origin', password: 'oscar-old-password', iterations: 260_000, lastLogin: null },
          { id: 3, username: 'otto', password: 'otto-old-password', iterations: 600_000, lastLogin: '2026-10-31 23:59:59' },
        ];
        const insert = origin.prepare('insert into users(id, username, email, password_hash, last_login) values (?, ?, ?, ?, ?)');
        for (const user of users) {
          insert.run(
            user.id,
            user.username,
            `${user.username}@origin.example`,
            werkzeugHash(user.password, user.iterations),
            user.lastLogin,
          );
        }
        origin.close();

        const env = { DATABASE_URL: database.url, GATEHOUSE_PASSWORD_HASH_PROFILE: 'test' };
        const result = await runGatehouse(['import', '--from-origin-sqlite', originFile], env);
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /: 3 rows read, 3 created, 0 skipped, 0 failed$/m);
        assert.match(result.stderr, /\[#{30}\] 3\/3 rows/);

        const t = await buildTestApp(target, {}, { database, keepDatabase: true });
        try {
          const lastLogins = await Promise.all(
            ['olivia', 'oscar.origin', 'otto'].map(async (username) =>
              toIso((await t.services.usersRepository.findByUsername(username))?.last_login_at ?? null),
            ),
          );
          assert.deepEqual(lastLogins, ['2026-11-01T10:00:00.123Z', null, '2026-10-31T23:59:59.000Z']);
          for (const user of users) {
            assert.equal((await signIn(t, user.username, 'not-the-password')).statusCode, 401);
            const response = await signIn(t, user.username, user.password);
            assert.equal(response.statusCode, 201, `${user.username}: ${response.body}`);
            assert.match(await storedHash(t, user.username.toLowerCase()), /^\$argon2id\$/);
          }
        } finally {
          await t.close();
        }

        const again = await runGatehouse(['import', '--from-origin-sqlite', originFile], env);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /: 3 rows read, 0 created, 3 skipped, 0 failed$/m, 'a second run creates nothing');
      } finally {
        await database.drop();
      }
    });
  });
}

describe('gatehouse import FILE with AMQP_URL', { skip: await amqpSkip() }, () => {
  test('waits until every row is imported, taking over the chunks no instance’s worker took, before it reports', async () => {
    const database = await createTestDatabase('sqlite');
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-import-'));
    const queue = `gatehouse.imports.test.${process.pid}.${randomBytes(6).toString('hex')}`;
    try {
      const file = join(dir, 'users.ndjson');
      const hash = werkzeugHash(PASSWORD);
      writeFileSync(
        file,
        ['amqpcli1', 'amqpcli2'].map((u) => JSON.stringify({ username: u, email: `${u}@example.com`, password_hash: hash })).join('\n'),
      );
      const result = await runGatehouse(['import', file], {
        DATABASE_URL: database.url,
        GATEHOUSE_PASSWORD_HASH_PROFILE: 'test',
        AMQP_URL: amqpUrl(),
        AMQP_IMPORT_QUEUE: queue,
        GATEHOUSE_IMPORT_LEASE_SECONDS: '1',
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /: 2 rows read, 2 created, 0 skipped, 0 failed$/m);
    } finally {
      await deleteQueue(queue);
      rmSync(dir, { recursive: true, force: true });
      await database.drop();
    }
  });
});
