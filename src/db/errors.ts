// Recognises a unique-constraint violation from either driver and names the column involved.

export function uniqueViolationColumn(error: unknown): string | null {
  const e = error as { code?: string; constraint?: string; message?: string };
  if (e?.code === '23505' && typeof e.constraint === 'string') {
    // PostgreSQL names column constraints <table>_<column>_key.
    const match = /^[a-z_]+?_([a-z_]+)_key$/.exec(e.constraint);
    return match?.[1] ?? e.constraint;
  }
  if (e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    const match = /UNIQUE constraint failed: \w+\.(\w+)/.exec(e.message ?? '');
    return match?.[1] ?? 'unknown';
  }
  return null;
}

const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH']);

/**
 * True for errors that mean "the database cannot be reached or is not accepting work right now"
 * (rather than a bug): connection failures, pool timeouts, a server shutting down or out of
 * connections, SQLite busy beyond its timeout. These become 503 unavailable, not 500.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  if (!e || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (CONNECTION_ERRNOS.has(code)) return true;
  if (/^(08|57P0|53300)/.test(code)) return true;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return /timeout exceeded when trying to connect|Connection terminated|is not queryable|driver has already been destroyed|Cannot use a pool after calling end/i.test(
    message,
  );
}
