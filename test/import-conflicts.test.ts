// An import's chunk on PostgreSQL goes in first as a plain INSERT (no ON CONFLICT check before each
// row). A taken username or email, in the database or earlier in the chunk, fails that statement;
// the chunk then goes again with ON CONFLICT DO NOTHING, and so do the job's later chunks. Each
// user ends created or skipped exactly once, with one user.created per user created, whichever
// statement wrote it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createImportsRepository } from '../src/modules/imports/imports.repository.js';
import { CHUNK_ROWS, createImportsService } from '../src/modules/imports/imports.service.js';
import { buildTestApp, type TestApp, uniqueName } from './helpers/app.js';
import { targets } from './helpers/databases.js';
import { werkzeugHash } from './helpers/hashes.js';
import { importEvents, ndjson, upload, usernamesLike } from './helpers/imports.js';

const HASH = werkzeugHash('imported-password-1');

interface ChunkCall {
  seq: number;
  skipTaken: boolean;
  error?: string;
}

/** An imports service on the test app's database whose repository records every importChunk. */
function recordingImports(t: TestApp) {
  const { database, usersRepository, hasher, events } = t.services;
  const repository = createImportsRepository(database.db);
  const calls: ChunkCall[] = [];
  const imports = createImportsService({
    db: database.db,
    dialect: database.dialect,
    imports: {
      ...repository,
      async importChunk(jobId, seq, chunk, now, skipTaken) {
        const call: ChunkCall = { seq, skipTaken };
        calls.push(call);
        try {
          return await repository.importChunk(jobId, seq, chunk, now, skipTaken);
        } catch (error) {
          call.error = (error as { code?: string }).code ?? String(error);
          throw error;
        }
      },
    },
    users: usersRepository,
    hasher,
    events,
    leaseSeconds: 60,
    hashLanes: 2,
    enqueue: null,
  });
  return { imports, calls };
}

/** Uploads the rows and processes the job's chunks one at a time, in order; the job's status. */
async function importInOrder(t: TestApp, imports: ReturnType<typeof recordingImports>['imports'], rows: unknown[]) {
  const response = await upload(t, ndjson(rows));
  assert.equal(response.statusCode, 202, response.body);
  const { id } = response.json() as { id: string };
  for (let claimed = await imports.claimNext(); claimed; claimed = await imports.claimNext()) {
    assert.equal(claimed.jobId, id);
    assert.equal(await imports.processChunk(claimed.jobId, claimed.seq), true);
  }
  return imports.status(id);
}

function freshRow(prefix: string, index: number) {
  return { username: `${prefix}${index}`, email: `${prefix}${index}@example.com`, password_hash: HASH };
}

for (const { target, skip } of await targets()) {
  if (target !== 'postgres') continue;
  describe('import chunks with taken usernames on PostgreSQL', { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp('postgres');
    });
    after(async () => t?.close());

    test('a chunk that meets an existing user goes again with ON CONFLICT, as do the job’s later chunks', async () => {
      const existing = await t.createUser();
      const prefix = `${uniqueName('c')}-`;
      const rows: unknown[] = [];
      for (let index = 0; index < 3 * CHUNK_ROWS; index++) rows.push(freshRow(prefix, index));
      // Chunk 2, near its end: a taken username (whose email is new) after 400 rows the failed
      // statement had already written. Chunk 3: a second row with its first row's email.
      const taken = CHUNK_ROWS + 400;
      rows[taken] = { username: existing.username, email: `${prefix}taken@example.com`, password_hash: HASH };
      const repeated = 2 * CHUNK_ROWS + 1;
      rows[repeated] = { username: `${prefix}repeat`, email: `${prefix}${2 * CHUNK_ROWS}@example.com`, password_hash: HASH };

      const { imports, calls } = recordingImports(t);
      const job = await importInOrder(t, imports, rows);
      assert.deepEqual(calls, [
        { seq: 1, skipTaken: false },
        { seq: 2, skipTaken: false, error: '23505' },
        { seq: 2, skipTaken: true },
        { seq: 3, skipTaken: true },
      ]);
      assert.deepEqual(
        { status: job.status, rows_read: job.rows_read, created: job.created, skipped: job.skipped, failed: job.failed },
        { status: 'completed', rows_read: 3 * CHUNK_ROWS, created: 3 * CHUNK_ROWS - 2, skipped: 2, failed: 0 },
      );
      const expected = rows
        .map((_row, index) => `${prefix}${index}`)
        .filter((_name, index) => index !== taken && index !== repeated)
        .sort();
      assert.deepEqual(await usernamesLike(t, prefix), expected, 'the first statement of chunk 2 left no user behind');
      const events = await importEvents(t, job.id);
      assert.equal(events.length, 3 * CHUNK_ROWS - 2, 'one user.created per user created, none from the failed statement');
      assert.deepEqual(events.map((event) => event.data.user?.username).sort(), expected);
    });

    test('a chunk whose own rows collide goes again and creates the first; another job starts with a plain INSERT', async () => {
      const prefix = `${uniqueName('d')}-`;
      const rows = [freshRow(prefix, 0), { ...freshRow(prefix, 1), username: `${prefix}0` }, freshRow(prefix, 2)];
      const { imports, calls } = recordingImports(t);
      const job = await importInOrder(t, imports, rows);
      assert.deepEqual(calls, [
        { seq: 1, skipTaken: false, error: '23505' },
        { seq: 1, skipTaken: true },
      ]);
      assert.deepEqual({ created: job.created, skipped: job.skipped }, { created: 2, skipped: 1 });
      const [first] = await t.services.database.db.selectFrom('users').select('email').where('username', '=', `${prefix}0`).execute();
      assert.equal(first?.email, `${prefix}0@example.com`, 'the first of the two rows was created');

      const later = await importInOrder(t, imports, [freshRow(prefix, 3)]);
      assert.equal(later.created, 1);
      assert.deepEqual(calls.slice(2), [{ seq: 1, skipTaken: false }], 'the collision was this job’s, not the next one’s');
    });
  });
}
