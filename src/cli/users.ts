// gatehouse users create | list | set-password | disable: the operator's way in when no admin can
// sign in, through the same services (and rules) as the API.
import { AppError } from '../http/errors.js';
import type { Services } from '../services.js';
import { type Command, DATABASE, HASHING, load, readPassword, required, requiredPositional, type Values, withServices } from './command.js';
import { CommandFailure, EXIT, UsageError } from './exit.js';

/** In the order the overview and `gatehouse users --help` list them. */
export const USERS_COMMANDS: Command[] = [
  {
    name: 'users create',
    usage: 'gatehouse users create --username U --email E [--password P] [--admin] [--display-name N]',
    summary: 'create a user',
    details:
      'Without --password the password is read from standard input (one line), so that it stays out of the shell history.\nExit 4 when the username or email is taken.',
    options: {
      username: { type: 'string', value: 'U', doc: 'the username (required)' },
      email: { type: 'string', value: 'E', doc: 'the email address (required)' },
      password: { type: 'string', value: 'P', doc: 'the password; default: one line of standard input' },
      admin: { type: 'boolean', doc: 'give the admin role too' },
      'display-name': { type: 'string', value: 'N', doc: 'the display name' },
    },
    settings: [...DATABASE, ...HASHING],
    run: createUser,
  },
  {
    name: 'users list',
    usage: 'gatehouse users list [--limit N] [--search TEXT] [--status S] [--role R] [--json]',
    summary: 'list users, oldest first, as a table (or JSON)',
    details: 'The table has USERNAME, EMAIL, ROLES, STATUS and LAST SIGN-IN (UTC) columns; --json prints the users as the API does.',
    options: {
      limit: { type: 'string', value: 'N', doc: 'at most N users, 1 to 10000 (default 100)' },
      search: { type: 'string', value: 'TEXT', doc: 'only users whose username or email starts with TEXT' },
      status: { type: 'string', value: 'S', doc: 'only active or disabled users' },
      role: { type: 'string', value: 'R', doc: 'only users with the admin or user role' },
      json: { type: 'boolean', doc: 'print a JSON array instead of a table' },
    },
    settings: DATABASE,
    run: listUsers,
  },
  {
    name: 'users set-password',
    usage: 'gatehouse users set-password USERNAME [--password P]',
    summary: "set a user's password and end their sessions",
    details: 'Without --password the password is read from standard input (one line).\nExit 3 when there is no such user.',
    options: { password: { type: 'string', value: 'P', doc: 'the new password; default: one line of standard input' } },
    positionals: 1,
    settings: [...DATABASE, ...HASHING],
    run: setPassword,
  },
  {
    name: 'users disable',
    usage: 'gatehouse users disable USERNAME',
    summary: 'disable a user and end their sessions',
    details: 'Exit 3 when there is no such user, 4 when it is the last active admin.',
    positionals: 1,
    settings: DATABASE,
    run: disableUser,
  },
];

async function createUser(values: Values): Promise<void> {
  const username = required(values, 'username', 'users create');
  const email = required(values, 'email', 'users create');
  const password = await readPassword(values.password, 'users create');
  const { operatorCaller } = await load.usersView();
  const user = await withServices((s) =>
    s.users.create(
      {
        username,
        email,
        password,
        display_name: typeof values['display-name'] === 'string' ? values['display-name'] : null,
        roles: values.admin ? ['admin', 'user'] : ['user'],
      },
      operatorCaller(),
    ),
  );
  process.stdout.write(`created ${user.username} (${user.id}) roles=${user.roles.join(',')}\n`);
}

async function listUsers(values: Values): Promise<void> {
  const limit = values.limit === undefined ? 100 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
    throw new UsageError('--limit must be a whole number from 1 to 10000', 'users list');
  const filters = {
    q: typeof values.search === 'string' && values.search !== '' ? values.search : undefined,
    status: oneOf(values.status, 'status', ['active', 'disabled'] as const),
    role: oneOf(values.role, 'role', ['admin', 'user'] as const),
  };
  const { users, more } = await withServices(async (s) => {
    const found: Awaited<ReturnType<Services['users']['list']>>['items'] = [];
    let cursor: string | undefined;
    // Pages of at most 100, the API's own bound, until the limit or the last page.
    do {
      const page = await s.users.list({ ...filters, limit: Math.min(100, limit - found.length), sort: 'created_at', cursor });
      found.push(...page.items);
      cursor = page.next_cursor ?? undefined;
    } while (cursor && found.length < limit);
    return { users: found, more: cursor !== undefined };
  });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(users, null, 2)}\n`);
  } else if (users.length === 0) {
    process.stdout.write('no users match\n');
  } else {
    const rows = [['USERNAME', 'EMAIL', 'ROLES', 'STATUS', 'LAST SIGN-IN (UTC)']];
    for (const user of users) {
      const lastSignIn = user.last_login_at ? user.last_login_at.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : 'never';
      rows.push([user.username, user.email, user.roles.join(','), user.status, lastSignIn]);
    }
    process.stdout.write(`${table(rows)}\n`);
  }
  if (more) process.stderr.write(`gatehouse: showed the first ${limit} users; more match (raise --limit or narrow with --search)\n`);
}

async function setPassword(values: Values, positionals: string[]): Promise<void> {
  const username = requiredPositional(positionals, 'USERNAME', 'users set-password');
  const password = await readPassword(values.password, 'users set-password');
  const user = await withServices((s) => namedUser(username, () => s.users.setPassword(username, password)));
  process.stdout.write(`password changed for ${user.username}; their sessions were ended\n`);
}

async function disableUser(_values: Values, positionals: string[]): Promise<void> {
  const username = requiredPositional(positionals, 'USERNAME', 'users disable');
  const { operatorCaller } = await load.usersView();
  await withServices(async (s) => {
    const user = await namedUser(username, () => s.users.findByUsername(username));
    await s.users.update(user.id, { status: 'disabled' }, operatorCaller());
  });
  process.stdout.write(`disabled ${username}; their sessions were ended\n`);
}

/** The user, or not found (exit 3) naming the username the operator typed. */
async function namedUser<T>(username: string, find: () => Promise<T | undefined>): Promise<T> {
  try {
    const user = await find();
    if (user) return user;
  } catch (error) {
    if (!(error instanceof AppError && error.code === 'not_found')) throw error;
  }
  throw new CommandFailure(`no user named ${username}`, EXIT.notFound);
}

function oneOf<T extends string>(value: string | boolean | undefined, name: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value))
    throw new UsageError(`--${name} is one of ${allowed.join(', ')}`, 'users list');
  return value as T;
}

/** Columns padded to their widest cell, the header row first. */
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
