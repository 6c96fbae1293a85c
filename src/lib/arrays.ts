// Fastify's route options take one value or a list (a route's methods, each of its hooks).

/** The value as a list: itself when it is one, empty when absent. */
export function asArray<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
