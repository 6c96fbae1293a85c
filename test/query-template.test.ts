// src/db/template.ts: a query built and compiled once gives, for any values, the SQL text and the
// parameters that building it with those values gives; a value it cannot place is refused.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from '../src/db/schema.js';
import { queryTemplate } from '../src/db/template.js';

// Compiling needs only the dialect: the pool never connects.
const pool = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none' });
const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
after(() => db.destroy());

type Values = { id: string; userId: string; at: string; ip: string | null; agent: string | null };

const build = (v: Values) =>
  db
    .with('new_session', (q) =>
      q
        .insertInto('sessions')
        .values({ id: v.id, user_id: v.userId, created_at: v.at, expires_at: v.at, revoked_at: null, ip: v.ip, user_agent: v.agent })
        .returning('id'),
    )
    .updateTable('users')
    .set({ last_login_at: v.at })
    .where('id', '=', v.userId)
    .where((eb) => eb.or([eb('last_login_at', 'is', null), eb('last_login_at', '<', v.at)]))
    .returning(['id', 'username']);

test('gives the text and parameters that building with the values gives, call after call', () => {
  const template = queryTemplate(build);
  const cases: Values[] = [
    { id: 's1', userId: 'u1', at: '2026-01-01T00:00:00.000Z', ip: '10.0.0.1', agent: 'curl' },
    { id: 's2', userId: 'u2', at: '2026-02-02T00:00:00.000Z', ip: null, agent: null },
    { id: 's3', userId: 'u1', at: '2026-03-03T00:00:00.000Z', ip: '::1', agent: null },
  ];
  for (const values of cases) {
    const fromTemplate = template(values);
    const fresh = build(values).compile();
    assert.equal(fromTemplate.sql, fresh.sql);
    assert.deepEqual(fromTemplate.parameters, fresh.parameters);
  }
  // The text does not change with the values: one prepared statement serves every call.
  assert.equal(new Set(cases.map((values) => template(values).sql)).size, 1);
});

test('refuses a value written into the SQL text', () => {
  const template = queryTemplate((v: { name: string }) => db.selectFrom('users').select('id').where('username', '=', sql.lit(v.name)));
  assert.throws(() => template({ name: 'x' }), /written into the SQL text/);
});

test('refuses a value that is part of a larger parameter', () => {
  const template = queryTemplate((v: { name: string }) => db.selectFrom('users').select('id').where('username', 'like', `%${v.name}%`));
  assert.throws(() => template({ name: 'x' }), /part of a larger parameter/);
});
