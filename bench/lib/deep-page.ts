// S5 (issue 6): a page deep into many users against the first page, on PostgreSQL. The users are
// written straight into the database in a few large INSERT … SELECT statements (seeding 1,000,000
// through the API would take hours of argon2id), then both pages are loaded with autocannon.
import pg from 'pg';
import type { LoadFigures, LoadOptions } from './load.js';
import { measurePaired } from './paired.js';
import type { ServerProcess } from './processes.js';

export interface SeedFigures {
  users: number;
  seconds: number;
}

/** Users per INSERT statement: big enough that round trips do not matter, small enough to report progress. */
const SEED_BATCH = 100_000;

/**
 * Inserts `count` users shaped like real ones: uuidv7 ids in created_at order, unique usernames whose
 * order is unrelated to creation (an md5 prefix), created_at spread over three years, 80% with a
 * last_login_at, 2% disabled, and one shared password hash. Runs ANALYZE after, as autovacuum would.
 */
export async function seedUsers(
  databaseUrl: string,
  count: number,
  passwordHash: string,
  log: (line: string) => void,
): Promise<SeedFigures> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const started = performance.now();
  try {
    for (let first = 1; first <= count; first += SEED_BATCH) {
      const last = Math.min(count, first + SEED_BATCH - 1);
      await client.query(
        `insert into users (id, username, email, display_name, roles, status, password_hash, created_at, updated_at, last_login_at, last_seen_at)
         select substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' || substr(h, 17, 4) || '-' || substr(h, 21, 12),
                name, name || '@example.com', case when n % 4 = 0 then 'User ' || n end, 'user',
                case when n % 50 = 0 then 'disabled' else 'active' end, $3, created, created,
                case when n % 5 <> 0 then created + (n % 997) * interval '1 day' / 997 * 365 end, null
         from (
           select n, name, created,
                  lpad(to_hex((extract(epoch from created) * 1000)::bigint), 12, '0') || '7' || substr(m, 1, 3) || '8' || substr(m, 4, 15) as h
           from (
             select n, 'u' || substr(md5(n::text), 1, 6) || '-' || n as name, md5('id' || n) as m,
                    timestamptz '2023-01-01T00:00:00Z' + n * (interval '3 years' / $4::int) as created
             from generate_series($1::int, $2::int) as n
           ) as raw
         ) as shaped`,
        [first, last, passwordHash, count],
      );
      log(`  S5 seed: ${last} of ${count} users (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    }
    await client.query('analyze users');
  } finally {
    await client.end();
  }
  return { users: count, seconds: (performance.now() - started) / 1000 };
}

export type DeepSort = 'created_at' | 'username' | '-last_login_at';

/** The sort column's value and the id of the row at `offset` in that sort's order, as the service encodes them. */
async function rowAt(databaseUrl: string, sort: DeepSort, offset: number): Promise<{ value: string | null; id: string }> {
  const order = {
    created_at: 'created_at asc, id asc',
    username: 'username asc, id asc',
    '-last_login_at': 'last_login_at desc nulls last, id desc',
  }[sort];
  const column = sort.replace('-', '');
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const result = await client.query<{ value: Date | string | null; id: string }>(
      `select ${column} as value, id from users order by ${order} offset $1 limit 1`,
      [offset],
    );
    const row = result.rows[0];
    if (!row) throw new Error(`no user at offset ${offset}`);
    return { value: row.value instanceof Date ? row.value.toISOString() : row.value, id: row.id };
  } finally {
    await client.end();
  }
}

/**
 * A cursor for the page right after the row at `offset`. The service's cursor is base64url JSON of
 * [sort key, value, id] (src/lib/cursor.ts, not signed); the sort key also carries the filters, so it
 * is taken from a real cursor the service handed out, and only the position is replaced.
 */
export async function deepCursor(base: string, authorization: string, databaseUrl: string, sort: DeepSort, offset: number) {
  const response = await fetch(`${base}/v1/users?limit=1&sort=${encodeURIComponent(sort)}`, { headers: { authorization } });
  const body = (await response.json()) as { next_cursor?: string | null };
  if (response.status !== 200 || !body.next_cursor) throw new Error(`GET /v1/users?limit=1: ${response.status}`);
  const [sortKey] = JSON.parse(Buffer.from(body.next_cursor, 'base64url').toString('utf8')) as [string];
  const position = await rowAt(databaseUrl, sort, offset);
  const cursor = Buffer.from(JSON.stringify([sortKey, position.value, position.id])).toString('base64url');
  // The page must be real: 20 users, starting right after the chosen row.
  const check = await fetch(`${base}/v1/users?limit=20&sort=${encodeURIComponent(sort)}&cursor=${cursor}`, { headers: { authorization } });
  const page = (await check.json()) as { items?: { id: string }[] };
  const next = await rowAt(databaseUrl, sort, offset + 1);
  if (check.status !== 200 || page.items?.length !== 20 || page.items[0]?.id !== next.id)
    throw new Error(`the deep cursor at offset ${offset} (${sort}) did not give the next 20 users: ${check.status}`);
  return cursor;
}

export interface PagePair {
  sort: DeepSort;
  offset: number;
  first: LoadFigures & { peakRssBytes: number };
  deep: LoadFigures & { peakRssBytes: number };
}

/**
 * Loads the first page and the deep page of one sort in turns, in 1 s slices (paired.ts), so that the
 * machine's changes of speed weigh on both alike: measured one after the other, a p99 ratio moved by
 * as much as the pages' difference (0.60–1.55× in one afternoon's runs, fourteenth round).
 */
export async function measurePagePair(
  server: ServerProcess,
  authorization: string,
  databaseUrl: string,
  sort: DeepSort,
  offset: number,
  durationSeconds: number,
  settings: (url: string, extra?: Partial<LoadOptions>) => LoadOptions,
): Promise<PagePair> {
  const cursor = await deepCursor(server.url, authorization, databaseUrl, sort, offset);
  const sortParam = sort === 'created_at' ? '' : `&sort=${encodeURIComponent(sort)}`;
  const headers = { authorization };
  const first = { server, load: settings(`${server.url}/v1/users?limit=20${sortParam}`, { headers }) };
  const deep = { server, load: settings(`${server.url}/v1/users?limit=20${sortParam}&cursor=${cursor}`, { headers }) };
  const paired = await measurePaired(deep, first, durationSeconds, 'median');
  return { sort, offset, first: paired.ceiling, deep: paired.scenario };
}
