// gatehouse import: users from NDJSON or CSV, or from the origin Flask service's SQLite file, through
// the same import jobs as POST /v1/imports, with progress on standard error.
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { type Command, DATABASE, HASHING, type Values, withServices } from './command.js';
import { CommandFailure, EXIT, UsageError } from './exit.js';

export const importCommand: Command = {
  name: 'import',
  usage: 'gatehouse import FILE [--format ndjson|csv] | gatehouse import --from-origin-sqlite PATH',
  summary: "import users from NDJSON or CSV, or the origin Flask service's SQLite file",
  details:
    'Shows progress on standard error and a summary on standard output. Exit 1 when any row failed (the first\nfailures are printed), 3 when FILE or PATH does not exist.',
  options: {
    format: { type: 'string', value: 'F', doc: 'ndjson or csv; default: csv for a .csv FILE, else ndjson' },
    'from-origin-sqlite': { type: 'string', value: 'PATH', doc: "import the origin service's users table (old passwords keep working)" },
  },
  positionals: 1,
  settings: [...DATABASE, ...HASHING, 'AMQP_URL', 'AMQP_IMPORT_QUEUE', 'GATEHOUSE_IMPORT_LEASE_SECONDS'],
  run: runImport,
};

async function runImport(values: Values, positionals: string[]): Promise<void> {
  const originPath = typeof values['from-origin-sqlite'] === 'string' ? values['from-origin-sqlite'] : undefined;
  const file = positionals[0];
  if (!originPath && !file) throw new UsageError('import needs a FILE or --from-origin-sqlite PATH', 'import');
  if (originPath && file) throw new UsageError('import takes a FILE or --from-origin-sqlite PATH, not both', 'import');
  const format = originPath ? 'ndjson' : typeof values.format === 'string' ? values.format : file?.endsWith('.csv') ? 'csv' : 'ndjson';
  if (format !== 'ndjson' && format !== 'csv') throw new UsageError('--format is ndjson or csv', 'import');
  mustExist((originPath ?? file) as string);
  const source = originPath
    ? Readable.from(originRows((await import('better-sqlite3')).default, originPath))
    : createReadStream(file as string);
  const status = await withServices(async (s) => {
    const jobId = await s.imports.start(source, format, null);
    const progress = setInterval(() => {
      s.imports.status(jobId).then(
        (job) => printProgress(job),
        () => {},
      );
    }, 250);
    try {
      // Until the job is done: with AMQP_URL its chunks go to the instances' workers first, and this
      // process takes over only those whose reservation ran out; drain() alone would report too early.
      for (;;) {
        await s.importWorker.drain();
        const { status } = await s.imports.status(jobId);
        if (status === 'completed' || status === 'failed') break;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    } finally {
      clearInterval(progress);
    }
    const job = await s.imports.status(jobId);
    printProgress(job);
    process.stderr.write('\n');
    return job;
  });
  process.stdout.write(
    `import ${status.id}: ${status.rows_read} rows read, ${status.created} created, ${status.skipped} skipped, ${status.failed} failed\n`,
  );
  for (const failure of status.failures.slice(0, 20)) process.stdout.write(`  row ${failure.row}: ${failure.reason}\n`);
  if (status.failed > 20) process.stdout.write(`  … (GET /v1/imports/${status.id} lists up to 100)\n`);
  if (status.failed > 0) process.exitCode = EXIT.failed;
}

/** Rows of the origin service's SQLite users table, as import rows (NDJSON lines). */
function* originRows(SqliteDatabase: typeof import('better-sqlite3'), path: string): Generator<string> {
  const origin = new SqliteDatabase(path, { readonly: true, fileMustExist: true });
  try {
    const columns = new Set((origin.prepare("select name from pragma_table_info('users')").all() as { name: string }[]).map((c) => c.name));
    if (!columns.has('username') || !columns.has('password_hash'))
      throw new UsageError(`${path} has no origin users table (username, password_hash)`, 'import');
    const lastLogin = columns.has('last_login') ? 'last_login' : columns.has('last_login_at') ? 'last_login_at' : 'null';
    const email = columns.has('email') ? 'email' : 'null';
    const rows = origin
      .prepare(`select username, ${email} as email, password_hash, ${lastLogin} as last_login from users order by id`)
      .iterate();
    for (const row of rows as Iterable<{ username: string; email: string | null; password_hash: string; last_login: string | null }>) {
      // The origin stored naive UTC times (datetime.utcnow()).
      const last = row.last_login ? `${row.last_login.replace(' ', 'T')}${/[zZ]|[+-]\d\d:?\d\d$/.test(row.last_login) ? '' : 'Z'}` : null;
      yield `${JSON.stringify({ username: row.username, email: row.email ?? undefined, password_hash: row.password_hash, last_login_at: last })}\n`;
    }
  } finally {
    origin.close();
  }
}

function mustExist(path: string): void {
  try {
    if (statSync(path).isFile()) return;
  } catch {}
  throw new CommandFailure(`no such file: ${path}`, EXIT.notFound);
}

function printProgress(job: { rows_read: number; created: number; skipped: number; failed: number }): void {
  const done = job.created + job.skipped + job.failed;
  const total = Math.max(job.rows_read, 1);
  const width = 30;
  const filled = Math.min(width, Math.round((done / total) * width));
  process.stderr.write(
    `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${job.rows_read} rows: ${job.created} created, ${job.skipped} skipped, ${job.failed} failed`,
  );
}
