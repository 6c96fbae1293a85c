// Many rows in one INSERT. Kysely's `values([...])` makes one bind parameter per value, so a chunk of
// 500 users was 5,500 parameters: Kysely built and compiled a node for each, pg serialized each, and
// PostgreSQL planned a 500-row VALUES list. On PostgreSQL the rows go instead as one JSON parameter,
// made by JSON.stringify and taken apart by json_to_recordset, in order (WITH ORDINALITY … ORDER BY).
// Measured (bench S7, bench/RESULTS.md): one array per column through unnest already cut a chunk's
// statements by a third, but pg's escaping of each array element was then 7% of the import's CPU;
// JSON.stringify does that escaping natively. SQLite keeps the VALUES list: it has no planner cost
// to save there.
import { type RawBuilder, sql } from 'kysely';

/** A column to insert and its PostgreSQL type (`text`, `timestamptz`, …). */
export interface BulkColumn<Row> {
  name: keyof Row & string;
  type: 'text' | 'timestamptz';
}

/**
 * `insert into <table> (<columns>) select … from json_to_recordset(<the rows as JSON>)`, rows in
 * the order given; the caller appends ON CONFLICT or RETURNING. PostgreSQL only.
 */
export function jsonRowsInsert<Row>(table: string, columns: readonly BulkColumn<Row>[], rows: readonly Row[]): RawBuilder<unknown> {
  const names = sql.join(columns.map((column) => sql.ref(column.name)));
  const definitions = sql.join(columns.map((column) => sql`${sql.ref(column.name)} ${sql.raw(column.type)}`));
  // Only the named columns are sent, whatever else a row object carries.
  const json = JSON.stringify(
    rows,
    columns.map((column) => column.name),
  );
  return sql`insert into ${sql.table(table)} (${names}) select ${names} from rows from (json_to_recordset(${json}::json) as (${definitions})) with ordinality as bulk_rows(${names}, bulk_position) order by bulk_position`;
}
