// Many rows in one INSERT on PostgreSQL: one array parameter per column, taken apart by unnest, in
// order (WITH ORDINALITY … ORDER BY). History, each step measured (bench S7, bench/RESULTS.md):
// - Kysely's `values([...])` made one bind parameter per value: a chunk of 500 users was 5,500
//   parameters, each built, compiled and serialized, and PostgreSQL planned a 500-row VALUES list.
// - One array per column through unnest cut a chunk's statements by a third, but pg's own escaping of
//   each array element was then 7% of the import's CPU.
// - One JSON parameter through json_to_recordset moved that escaping into JSON.stringify, but
//   PostgreSQL's JSON parsing (a field table per row object) became about a quarter of PostgreSQL's
//   time, and on two cores PostgreSQL is what an import waits for.
// - Now: arrays again, each column written as one array literal here (a regular expression test per
//   value, escaping only the rare value that needs it). Per user, in the same run: PostgreSQL's CPU
//   24 µs against JSON's 34, Node's serialization 3.5 µs against 2.
// SQLite keeps a VALUES list: it has no planner cost to save there.
import { type RawBuilder, sql } from 'kysely';

/** A column to insert and its PostgreSQL type (`text`, `timestamptz`, …). */
export interface BulkColumn<Row> {
  name: keyof Row & string;
  type: 'text' | 'timestamptz';
}

const NEEDS_ESCAPE = /["\\]/;
const ESCAPED = /["\\]/g;

/**
 * A PostgreSQL array literal of these values as text (`{"a","b\"c",NULL}`): every element quoted,
 * so that commas, braces, spaces and the word NULL stay data; `"` and `\` backslash-escaped; null
 * and undefined as NULL. Dates go as ISO 8601.
 */
export function arrayLiteral(values: readonly unknown[]): string {
  let literal = '{';
  for (let index = 0; index < values.length; index++) {
    if (index > 0) literal += ',';
    const value = values[index];
    if (value === null || value === undefined) {
      literal += 'NULL';
      continue;
    }
    const text = typeof value === 'string' ? value : value instanceof Date ? value.toISOString() : String(value);
    literal += NEEDS_ESCAPE.test(text) ? `"${text.replace(ESCAPED, '\\$&')}"` : `"${text}"`;
  }
  return `${literal}}`;
}

/** The columns' names, comma-separated, for a statement's column list. */
export function columnList<Row>(columns: readonly BulkColumn<Row>[]): RawBuilder<unknown> {
  return sql.join(columns.map((column) => sql.ref(column.name)));
}

/**
 * `unnest(<one array per column>) with ordinality as bulk_rows(<columns>, bulk_position)`: the rows
 * as a table, for a statement of the caller's own that reads them in order (ORDER BY bulk_position).
 * Only the named columns are sent, whatever else a row object carries. PostgreSQL only.
 */
export function unnestRows<Row>(columns: readonly BulkColumn<Row>[], rows: readonly Row[]): RawBuilder<unknown> {
  const arrays = sql.join(columns.map((column) => sql`${arrayLiteral(rows.map((row) => row[column.name]))}::${sql.raw(column.type)}[]`));
  return sql`unnest(${arrays}) with ordinality as bulk_rows(${columnList(columns)}, bulk_position)`;
}

/**
 * `insert into <table> (<columns>) select … from unnest(…)`, rows in the order given; the caller
 * appends ON CONFLICT or RETURNING. PostgreSQL only.
 */
export function unnestRowsInsert<Row>(table: string, columns: readonly BulkColumn<Row>[], rows: readonly Row[]): RawBuilder<unknown> {
  const names = columnList(columns);
  return sql`insert into ${sql.table(table)} (${names}) select ${names} from ${unnestRows(columns, rows)} order by bulk_position`;
}
