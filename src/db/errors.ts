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
