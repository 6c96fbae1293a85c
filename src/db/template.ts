// Queries that Kysely builds and compiles once. Building and compiling the sign-in's statement (five
// parts) was the largest single cost of a PostgreSQL sign-in on the event loop, about an eighth of
// its time (bench/RESULTS.md, fourteenth round). A template builds its query once with a placeholder
// for each named value, remembers where each placeholder landed among the parameters, and then
// fills a fresh parameter list per call: the same SQL text and parameters Kysely would have given,
// and a constant text, which prepared.ts can send as a named statement.
import type { Compilable, CompiledQuery } from 'kysely';

// Starts with a NUL, which no constant of a query holds: only a stand-in looks like this.
const PLACEHOLDER = '\u0000gatehouse-template-value:';

type Slot<V> = { name: keyof V } | { constant: unknown };

/**
 * A function from named values to the compiled query that `build` gives for them. `build` receives
 * stand-ins for the values and must use each as a whole parameter (no `sql.lit`, no string built
 * around one); the first call checks that and throws otherwise.
 */
export function queryTemplate<V extends Record<string, unknown>, O>(build: (values: V) => Compilable<O>): (values: V) => CompiledQuery<O> {
  let compiled: CompiledQuery<O> | undefined;
  let slots: Slot<V>[] = [];
  return (values) => {
    if (!compiled) {
      const standIns = new Proxy({} as V, { get: (_target, name) => `${PLACEHOLDER}${String(name)}` });
      const query = build(standIns).compile();
      if (query.sql.includes(PLACEHOLDER)) throw new Error('queryTemplate: a value was written into the SQL text');
      slots = query.parameters.map((parameter): Slot<V> => {
        if (typeof parameter !== 'string' || !parameter.includes(PLACEHOLDER)) return { constant: parameter };
        if (!parameter.startsWith(PLACEHOLDER)) throw new Error('queryTemplate: a value is part of a larger parameter');
        return { name: parameter.slice(PLACEHOLDER.length) as keyof V };
      });
      compiled = query;
    }
    const parameters = slots.map((slot) => ('name' in slot ? values[slot.name] : slot.constant));
    return { query: compiled.query, queryId: compiled.queryId, sql: compiled.sql, parameters };
  };
}
