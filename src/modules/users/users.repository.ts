// Kysely queries on `users`, nothing else: plain rows in and out, an optional transaction.
import { type ExpressionBuilder, type Kysely, type Selectable, sql, type Transaction, type Updateable } from 'kysely';
import { type BulkColumn, unnestRowsInsert } from '../../db/bulk-insert.js';
import { prepared } from '../../db/prepared.js';
import type { Database, Dialect, Timestamp, UsersTable } from '../../db/schema.js';
import { queryTemplate } from '../../db/template.js';

export type UserRow = Selectable<UsersTable>;
export type Executor = Kysely<Database> | Transaction<Database>;

export const ROLES = ['admin', 'user'] as const;
export type Role = (typeof ROLES)[number];

/**
 * The condition under which a sign-in at `at` moves last_login_at: only forward, so that concurrent
 * sign-ins leave the latest time (recordLogin, and a sign-in's single statement on PostgreSQL).
 */
export function loginMovesForward(at: Timestamp) {
  return (eb: ExpressionBuilder<Database, 'users'>) => eb.or([eb('last_login_at', 'is', null), eb('last_login_at', '<', at)]);
}

/** Roles are stored as one sorted, comma-joined column so that a role filter is an indexed IN (…). */
export function encodeRoles(roles: readonly Role[]): string {
  return [...new Set(roles)].sort().join(',');
}

export function decodeRoles(stored: string): Role[] {
  return stored.split(',').filter((role): role is Role => (ROLES as readonly string[]).includes(role));
}

/** Every stored value of `roles` that contains `role`. */
export function storedRolesContaining(role: Role): string[] {
  const others = ROLES.filter((r) => r !== role);
  const values: string[] = [];
  for (let mask = 0; mask < 1 << others.length; mask++) {
    values.push(encodeRoles([role, ...others.filter((_, i) => mask & (1 << i))]));
  }
  return values;
}

export type UserSort = 'created_at' | '-created_at' | 'username' | '-username' | 'last_login_at' | '-last_login_at';

export interface UserListQuery {
  limit: number;
  after: { value: string | null; id: string } | null;
  sort: UserSort;
  prefix?: string;
  status?: 'active' | 'disabled';
  role?: Role;
  lastLoginBefore?: string;
  lastLoginAfter?: string;
  neverLoggedIn?: boolean;
}

/** The users table's columns, as a bulk insert writes them (an import's chunk). */
export const USER_COLUMNS: readonly BulkColumn<UserRow>[] = [
  { name: 'id', type: 'text' },
  { name: 'username', type: 'text' },
  { name: 'email', type: 'text' },
  { name: 'display_name', type: 'text' },
  { name: 'roles', type: 'text' },
  { name: 'status', type: 'text' },
  { name: 'password_hash', type: 'text' },
  { name: 'created_at', type: 'timestamptz' },
  { name: 'updated_at', type: 'timestamptz' },
  { name: 'last_login_at', type: 'timestamptz' },
  { name: 'last_seen_at', type: 'timestamptz' },
];

/**
 * The same columns by name: what a prepared statement selects instead of `*`, so that a column added
 * by a later migration does not change its result (db/prepared.ts).
 */
export const USER_COLUMN_NAMES = USER_COLUMNS.map((column) => column.name);

export function createUsersRepository(db: Kysely<Database>, dialect: Dialect) {
  const postgres = dialect === 'postgres';
  const byUsername = queryTemplate((v: { username: string }) =>
    db.selectFrom('users').select(USER_COLUMN_NAMES).where('username', '=', v.username),
  );
  return {
    async insert(row: UserRow, trx: Executor = db): Promise<void> {
      await trx.insertInto('users').values(row).execute();
    },

    /**
     * Inserts rows in the order given, skipping each whose id, username or email is taken (by an
     * earlier row too: of two rows with the same username the first is created); the ids created.
     */
    async insertNew(rows: readonly UserRow[], trx: Executor = db): Promise<string[]> {
      if (rows.length === 0) return [];
      const created = postgres
        ? (await sql<{ id: string }>`${unnestRowsInsert('users', USER_COLUMNS, rows)} on conflict do nothing returning id`.execute(trx))
            .rows
        : await trx
            .insertInto('users')
            .values([...rows])
            .onConflict((oc) => oc.doNothing())
            .returning('id')
            .execute();
      return created.map((row) => row.id);
    },

    async findById(id: string, trx: Executor = db): Promise<UserRow | undefined> {
      return trx.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    },

    /** The sign-in's lookup: compiled once (db/template.ts), a prepared statement on PostgreSQL (db/prepared.ts). */
    async findByUsername(username: string, trx: Executor = db): Promise<UserRow | undefined> {
      return (await trx.executeQuery(prepared(byUsername({ username })))).rows[0];
    },

    async findAll(trx: Executor = db): Promise<UserRow[]> {
      return trx.selectFrom('users').selectAll().orderBy('created_at').orderBy('id').execute();
    },

    /** One page in keyset order; returns up to limit + 1 rows so the caller knows if more exist. */
    async list(query: UserListQuery, trx: Executor = db): Promise<UserRow[]> {
      return this.listQuery(query, trx).execute();
    },

    /** The query behind list(), unexecuted, so that tests can EXPLAIN it. */
    listQuery(query: UserListQuery, trx: Executor = db) {
      const descending = query.sort.startsWith('-');
      const column = (descending ? query.sort.slice(1) : query.sort) as 'created_at' | 'username' | 'last_login_at';
      let select = trx.selectFrom('users').selectAll();
      if (query.prefix) {
        // A range, not LIKE: it uses the (C-collated) unique indexes on both databases.
        const prefix = query.prefix;
        const upper = `${prefix}\uffff`;
        select = select.where((eb) =>
          eb.or([
            eb.and([eb('username', '>=', prefix), eb('username', '<', upper)]),
            eb.and([eb('email', '>=', prefix), eb('email', '<', upper)]),
          ]),
        );
      }
      if (query.status) select = select.where('status', '=', query.status);
      if (query.role) select = select.where('roles', 'in', storedRolesContaining(query.role));
      if (query.lastLoginBefore) select = select.where('last_login_at', '<', query.lastLoginBefore);
      if (query.lastLoginAfter) select = select.where('last_login_at', '>', query.lastLoginAfter);
      if (query.neverLoggedIn) select = select.where('last_login_at', 'is', null);

      const after = query.after;
      if (after) {
        const comparison = descending ? '<' : '>';
        if (column !== 'last_login_at') {
          select = select.where((eb) => eb(eb.refTuple(column, 'id'), comparison, eb.tuple(after.value ?? '', after.id)));
        } else if (after.value === null) {
          // NULL sorts as the oldest: first ascending, last descending.
          select = descending
            ? select.where((eb) => eb.and([eb('last_login_at', 'is', null), eb('id', '<', after.id)]))
            : select.where((eb) =>
                eb.or([eb.and([eb('last_login_at', 'is', null), eb('id', '>', after.id)]), eb('last_login_at', 'is not', null)]),
              );
        } else {
          const value = after.value;
          select = descending
            ? select.where((eb) =>
                eb.or([eb(eb.refTuple('last_login_at', 'id'), '<', eb.tuple(value, after.id)), eb('last_login_at', 'is', null)]),
              )
            : select.where((eb) => eb(eb.refTuple('last_login_at', 'id'), '>', eb.tuple(value, after.id)));
        }
      }
      if (column === 'last_login_at') {
        select = descending
          ? select.orderBy('last_login_at', (ob) => ob.desc().nullsLast()).orderBy('id', 'desc')
          : select.orderBy('last_login_at', (ob) => ob.asc().nullsFirst()).orderBy('id', 'asc');
      } else {
        select = select.orderBy(column, descending ? 'desc' : 'asc').orderBy('id', descending ? 'desc' : 'asc');
      }
      return select.limit(query.limit + 1);
    },

    async update(id: string, changes: Updateable<UsersTable>, trx: Executor = db): Promise<UserRow | undefined> {
      await trx.updateTable('users').set(changes).where('id', '=', id).execute();
      return trx.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    },

    async delete(id: string, trx: Executor = db): Promise<boolean> {
      const result = await trx.deleteFrom('users').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },

    /**
     * Moves last_login_at forward only, so concurrent sign-ins leave the latest time; returns the row
     * as updated, or undefined when it was already later.
     */
    async recordLogin(id: string, at: string, trx: Executor = db): Promise<UserRow | undefined> {
      return trx
        .updateTable('users')
        .set({ last_login_at: at })
        .where('id', '=', id)
        .where(loginMovesForward(at))
        .returningAll()
        .executeTakeFirst();
    },

    /** Writes last_seen_at unless it was written less than minIntervalSeconds before `at`. */
    async touchLastSeen(id: string, at: string, minIntervalSeconds: number, trx: Executor = db): Promise<void> {
      const threshold = new Date(Date.parse(at) - minIntervalSeconds * 1000).toISOString();
      await trx
        .updateTable('users')
        .set({ last_seen_at: at })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('last_seen_at', 'is', null), eb('last_seen_at', '<', threshold)]))
        .execute();
    },

    /** Ids of active admins; on PostgreSQL the rows are locked until the transaction ends. */
    async lockActiveAdmins(trx: Transaction<Database>, postgres: boolean): Promise<string[]> {
      let select = trx.selectFrom('users').select('id').where('status', '=', 'active').where('roles', 'in', storedRolesContaining('admin'));
      if (postgres) select = select.forUpdate();
      return (await select.execute()).map((row) => row.id);
    },

    async hasAdmin(trx: Executor = db): Promise<boolean> {
      const row = await trx
        .selectFrom('users')
        .select('id')
        .where('roles', 'in', storedRolesContaining('admin'))
        .limit(1)
        .executeTakeFirst();
      return row !== undefined;
    },
  };
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;
