// Named prepared statements on PostgreSQL for the statements every sign-in runs. Kysely sends each
// query unnamed, so PostgreSQL parses and plans it on every execution: for the sign-in's two
// statements that was about 40% of the database's CPU time a sign-in (bench/RESULTS.md, tenth and
// fourteenth rounds). A query marked here is sent by name instead; pg parses it once per
// connection and PostgreSQL keeps its plan.
//   - Marked queries name their columns (no `*`): a prepared statement whose result columns change,
//     as they would after a rolling deploy's migration adds one, fails with "cached plan must not
//     change result type".
//   - DATABASE_PREPARED_STATEMENTS=false turns it off, for poolers that cannot keep a connection's
//     named statements (PgBouncer in transaction mode before 1.21, or with max_prepared_statements 0).
import { createHash } from 'node:crypto';
import type { CompiledQuery } from 'kysely';
import type pg from 'pg';

// SQL text → statement name. A few call sites mark queries whose text does not vary with their
// values, so this stays small; the cap keeps a mistake from growing every connection's statements.
const names = new Map<string, string>();
const MARKED_MAX = 64;

/** Marks a compiled query to run as a named prepared statement where the pool prepares them; returns it. */
export function prepared<R>(query: CompiledQuery<R>): CompiledQuery<R> {
  if (!names.has(query.sql) && names.size < MARKED_MAX) {
    names.set(query.sql, `gatehouse_${createHash('sha256').update(query.sql).digest('hex').slice(0, 24)}`);
  }
  return query;
}

/**
 * Makes a pooled client send marked queries by name. Kysely calls query(text, values); anything else
 * (cursors, callbacks, unmarked text) goes through unchanged.
 */
export function sendMarkedQueriesByName(client: pg.ClientBase): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  const byName = (...args: unknown[]) => {
    const [text, values] = args;
    const name = args.length === 2 && typeof text === 'string' && Array.isArray(values) ? names.get(text) : undefined;
    return name ? query({ name, text, values }) : query(...args);
  };
  (client as unknown as { query: typeof byName }).query = byName;
}
