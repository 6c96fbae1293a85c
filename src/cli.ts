// The gatehouse command: serve | migrate | users … | keys rotate. Exit codes: 0 done, 1 failed,
// 2 wrong usage. Errors are one readable line on standard error, never a stack.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import SqliteDatabase from 'better-sqlite3';
import { ConfigError, loadConfig } from './config.js';
import { createDatabase } from './db/database.js';
import { migrateToLatest } from './db/migrate.js';
import { AppError } from './http/errors.js';
import { createLogger } from './http/logger.js';
import { serve } from './main.js';
import { operatorCaller } from './modules/users/users.view.js';
import { createServices, type Services } from './services.js';

const USAGE = `gatehouse: user management and authentication over HTTP

Usage:
  gatehouse serve                       serve the API (configuration from the environment; see README)
  gatehouse migrate                     apply database migrations and exit
  gatehouse users create --username U --email E [--password P] [--admin] [--display-name N]
  gatehouse users list [--limit N]      a table of users, oldest first
  gatehouse users set-password USERNAME [--password P]
  gatehouse users disable USERNAME
  gatehouse keys rotate                 add a new token-signing key; the previous one still verifies
  gatehouse relay                       run only the event relay (needs AMQP_URL), until SIGTERM
  gatehouse import FILE [--format ndjson|csv]
                                        import users from NDJSON or CSV (see README), with progress
  gatehouse import --from-origin-sqlite PATH
                                        import the origin Flask service's users (old passwords keep working)
  gatehouse help

Without --password, the password is read from standard input (one line), so that it stays out of
the shell history. Exit codes: 0 done, 1 failed, 2 wrong usage.
`;

class UsageError extends Error {}

async function readPassword(given: string | undefined): Promise<string> {
  if (given !== undefined) return given;
  if (process.stdin.isTTY) process.stderr.write('password: ');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  if (line === '') throw new UsageError('no password given (use --password or standard input)');
  return line;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function withServices<T>(work: (services: Services) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const services = await createServices(config, createLogger({ logLevel: 'warn' }));
  try {
    return await work(services);
  } finally {
    await services.close();
  }
}

async function usersCommand(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      username: { type: 'string' },
      email: { type: 'string' },
      password: { type: 'string' },
      'display-name': { type: 'string' },
      admin: { type: 'boolean', default: false },
      limit: { type: 'string', default: '100' },
    },
  });
  switch (action) {
    case 'create': {
      if (!values.username || !values.email) throw new UsageError('users create needs --username and --email');
      const password = await readPassword(values.password);
      const user = await withServices((s) =>
        s.users.create(
          {
            username: values.username as string,
            email: values.email as string,
            password,
            display_name: values['display-name'] ?? null,
            roles: values.admin ? ['admin', 'user'] : ['user'],
          },
          operatorCaller(),
        ),
      );
      process.stdout.write(`created ${user.username} (${user.id}) roles=${user.roles.join(',')}\n`);
      return;
    }
    case 'list': {
      const limit = Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new UsageError('--limit must be 1 to 100');
      const page = await withServices((s) => s.users.list({ limit, sort: 'created_at' }));
      const rows = [['ID', 'USERNAME', 'EMAIL', 'ROLES', 'STATUS', 'LAST LOGIN']];
      for (const user of page.items) {
        rows.push([user.id, user.username, user.email, user.roles.join(','), user.status, user.last_login_at ?? 'never']);
      }
      process.stdout.write(`${table(rows)}\n`);
      if (page.next_cursor) process.stdout.write(`(more users exist; use GET /v1/users to page through them)\n`);
      return;
    }
    case 'set-password': {
      const username = positionals[0] ?? values.username;
      if (!username) throw new UsageError('users set-password needs a USERNAME');
      const password = await readPassword(values.password);
      const user = await withServices((s) => s.users.setPassword(username, password));
      process.stdout.write(`password changed for ${user.username}; their sessions were ended\n`);
      return;
    }
    case 'disable': {
      const username = positionals[0] ?? values.username;
      if (!username) throw new UsageError('users disable needs a USERNAME');
      await withServices(async (s) => {
        const user = await s.users.findByUsername(username);
        if (!user) throw AppError.notFound(`The user ${username}`);
        await s.users.update(user.id, { status: 'disabled' }, operatorCaller());
      });
      process.stdout.write(`disabled ${username}; their sessions were ended\n`);
      return;
    }
    default:
      throw new UsageError(`unknown users command: ${action ?? '(none)'}`);
  }
}

/** Rows of the origin service's SQLite users table, as import rows (NDJSON lines). */
function* originRows(path: string): Generator<string> {
  const origin = new SqliteDatabase(path, { readonly: true, fileMustExist: true });
  try {
    const columns = new Set((origin.prepare("select name from pragma_table_info('users')").all() as { name: string }[]).map((c) => c.name));
    if (!columns.has('username') || !columns.has('password_hash'))
      throw new UsageError(`${path} has no origin users table (username, password_hash)`);
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

async function importCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { format: { type: 'string' }, 'from-origin-sqlite': { type: 'string' } },
  });
  const originPath = values['from-origin-sqlite'];
  const file = positionals[0];
  if (!originPath && !file) throw new UsageError('import needs a FILE or --from-origin-sqlite PATH');
  const format = originPath ? 'ndjson' : ((values.format ?? (file?.endsWith('.csv') ? 'csv' : 'ndjson')) as string);
  if (format !== 'ndjson' && format !== 'csv') throw new UsageError('--format is ndjson or csv');
  const source = originPath ? Readable.from(originRows(originPath)) : createReadStream(file as string);
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
  if (status.failed > 0) process.exitCode = 1;
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

async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      await serve(loadConfig());
      return;
    case 'migrate': {
      const config = loadConfig();
      const database = createDatabase(config);
      try {
        const applied = await migrateToLatest(database.db);
        process.stdout.write(applied.length > 0 ? `applied: ${applied.join(', ')}\n` : 'the database is up to date\n');
      } finally {
        await database.destroy();
      }
      return;
    }
    case 'users':
      await usersCommand(rest);
      return;
    case 'relay': {
      const config = loadConfig();
      if (!config.amqpUrl) throw new UsageError('gatehouse relay needs AMQP_URL');
      const logger = createLogger(config);
      const services = await createServices(config, logger);
      const relay = services.relay;
      if (!relay) throw new UsageError('gatehouse relay needs AMQP_URL');
      relay.start();
      logger.info({ exchange: config.amqpExchange }, 'event relay running');
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      await services.close();
      return;
    }
    case 'import':
      await importCommand(rest);
      return;
    case 'keys':
      if (rest[0] !== 'rotate') throw new UsageError('the keys command is: gatehouse keys rotate');
      process.stdout.write(`new signing key ${await withServices((s) => s.tokens.rotate())}\n`);
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      throw new UsageError(`unknown command: ${command}`);
  }
}

run(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError || (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
    process.stderr.write(`gatehouse: ${error.message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else if (error instanceof ConfigError) {
    process.stderr.write(`gatehouse: ${error.message}\n`);
    process.exitCode = 1;
  } else if (error instanceof AppError) {
    const fields = error.options.errors?.map((e) => `\n  ${e.field}: ${e.message}`).join('') ?? '';
    process.stderr.write(`gatehouse: ${error.detail}${fields}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`gatehouse: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
});
