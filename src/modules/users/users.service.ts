// The rules about users: who may create, read, change and delete whom, input normalisation, the
// password policy, and "at least one active admin remains". Owns the transactions.
import type { Kysely, Transaction } from 'kysely';
import type { Config } from '../../config.js';
import { uniqueViolationColumn } from '../../db/errors.js';
import type { Database, Dialect } from '../../db/schema.js';
import { AppError, type FieldError } from '../../http/errors.js';
import { decodeCursor, encodeCursor } from '../../lib/cursor.js';
import { uuidv7 } from '../../lib/ids.js';
import { nowIso, toIso } from '../../lib/time.js';
import type { EventRecorder } from '../events/events.js';
import type { LoginsRepository } from '../logins/logins.repository.js';
import type { CallerCache } from '../sessions/caller-cache.js';
import type { PasswordHasher } from '../sessions/passwords.js';
import type { SessionsRepository } from '../sessions/sessions.repository.js';
import { assertPasswordPolicy } from './password-policy.js';
import {
  type Executor,
  encodeRoles,
  type Role,
  type UserListQuery,
  type UserRow,
  type UserSort,
  type UsersRepository,
} from './users.repository.js';
import { type Caller, isAdmin, toUserView, type UserView } from './users.view.js';

const USERNAME = /^[a-z0-9._-]{3,32}$/;
// Pragmatic address check (one @, no spaces, a dot in the domain); delivery is the real test.
const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
const EMAIL_MAX = 254;
const DISPLAY_NAME_MAX = 100;

export interface CreateUserInput {
  username: string;
  email: string;
  password: string;
  display_name?: string | null;
  roles?: Role[];
}

export interface UpdateUserInput {
  email?: string;
  display_name?: string | null;
  roles?: Role[];
  status?: 'active' | 'disabled';
}

export interface ListUsersInput {
  limit: number;
  cursor?: string;
  q?: string;
  status?: 'active' | 'disabled';
  role?: Role;
  last_login_before?: string;
  last_login_after?: string;
  never_logged_in?: boolean;
  sort: UserSort;
}

export interface UsersServiceDeps {
  db: Kysely<Database>;
  dialect: Dialect;
  config: Pick<Config, 'openSignup'>;
  users: UsersRepository;
  sessions: SessionsRepository;
  logins: LoginsRepository;
  hasher: PasswordHasher;
  events: EventRecorder;
  /** Told of every change to a user or its sessions, after it has committed. */
  callerCache: Pick<CallerCache, 'changed'>;
}

export function normalizeUsername(raw: string): string {
  return raw.toLowerCase();
}

export function validateUsername(raw: string, errors: FieldError[]): string {
  const username = normalizeUsername(raw);
  if (!USERNAME.test(username)) errors.push({ field: 'username', message: 'must be 3-32 characters of a-z, 0-9, ".", "_" or "-"' });
  return username;
}

export function validateEmail(raw: string, errors: FieldError[]): string {
  const email = raw.trim().toLowerCase();
  if (email.length > EMAIL_MAX || !EMAIL.test(email)) errors.push({ field: 'email', message: 'must be a valid email address' });
  return email;
}

export function validateDisplayName(raw: string | null | undefined, errors: FieldError[]): string | null {
  if (raw === undefined || raw === null) return null;
  const name = raw.trim();
  if ([...name].length > DISPLAY_NAME_MAX)
    errors.push({ field: 'display_name', message: `must be at most ${DISPLAY_NAME_MAX} characters` });
  return name === '' ? null : name;
}

function conflict(error: unknown): AppError | null {
  const column = uniqueViolationColumn(error);
  if (column === 'username') return new AppError('username_taken', 'Another account has this username.', { cause: error });
  if (column === 'email') return new AppError('email_taken', 'Another account has this email address.', { cause: error });
  return null;
}

function parseTime(field: string, value: string | undefined, errors: FieldError[]): string | undefined {
  if (value === undefined) return undefined;
  const millis = Date.parse(value);
  if (Number.isNaN(millis)) {
    errors.push({ field, message: 'must be an RFC 3339 date-time' });
    return undefined;
  }
  return new Date(millis).toISOString();
}

export function createUsersService(deps: UsersServiceDeps) {
  const { db, users, sessions, logins, hasher, events, callerCache } = deps;

  /**
   * A change to a user or its sessions, in one transaction; afterwards (committed or not) the
   * per-request authentication cache forgets the user, and cached user lists are forgotten, here and
   * on every other instance.
   */
  async function changing<T>(userId: string, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    try {
      return await db.transaction().execute(work);
    } finally {
      callerCache.changed(userId);
    }
  }

  /** session.revoked for each session a change ended, in the change's transaction. */
  async function recordRevoked(trx: Executor, userId: string, sessionIds: string[], reason: string): Promise<void> {
    for (const sessionId of sessionIds) await events.record(trx, 'session.revoked', userId, { session_id: sessionId, reason });
  }

  /** The target user when the caller may see it; 404 otherwise, so a non-admin learns nothing. */
  async function visibleUser(id: string, caller: Caller): Promise<UserRow> {
    if (!isAdmin(caller.user) && caller.user.id !== id) throw AppError.notFound('The user');
    const user = await users.findById(id);
    if (!user) throw AppError.notFound('The user');
    return user;
  }

  return {
    /** Creates a user: an admin may always; anyone else (signed in or not) only with open sign-up. */
    async create(
      input: CreateUserInput,
      caller: Caller | null,
      options: { beforeCommit?: (trx: Executor, user: UserView) => Promise<void> } = {},
    ): Promise<UserView> {
      const admin = caller !== null && isAdmin(caller.user);
      if (!admin && !deps.config.openSignup) {
        if (!caller) throw AppError.unauthorized();
        throw AppError.forbidden('Only an admin may create users while open sign-up is off.');
      }
      const errors: FieldError[] = [];
      if (input.roles !== undefined && !admin) errors.push({ field: 'roles', message: 'may only be set by an admin' });
      const username = validateUsername(input.username, errors);
      const email = validateEmail(input.email, errors);
      const displayName = validateDisplayName(input.display_name, errors);
      if (errors.length > 0) throw AppError.invalid(errors);
      assertPasswordPolicy(input.password, username);

      const now = nowIso();
      const row: UserRow = {
        id: uuidv7(),
        username,
        email,
        display_name: displayName,
        roles: encodeRoles(input.roles && input.roles.length > 0 ? input.roles : ['user']),
        status: 'active',
        password_hash: await hasher.hash(input.password),
        created_at: now,
        updated_at: now,
        last_login_at: null,
        last_seen_at: null,
      };
      try {
        // Through changing() too: nothing caches a new user, but cached lists must show it.
        await changing(row.id, async (trx) => {
          await users.insert(row, trx);
          await events.record(trx, 'user.created', row.id, { user: toUserView(row) });
          await options.beforeCommit?.(trx, toUserView(row));
        });
      } catch (error) {
        const taken = conflict(error);
        // Open sign-up must not tell an anonymous caller which usernames and emails exist (ASVS
        // 2.2.1, OWASP API2): a taken one answers like a creation, after the same hashing work,
        // but nothing is stored. Signing in with it then fails like any wrong password.
        if (taken && !admin) return toUserView(row);
        throw taken ?? error;
      }
      return toUserView(row);
    },

    async list(input: ListUsersInput): Promise<{ items: UserView[]; next_cursor: string | null }> {
      const errors: FieldError[] = [];
      const filterKey = JSON.stringify([
        input.q,
        input.status,
        input.role,
        input.last_login_before,
        input.last_login_after,
        input.never_logged_in,
      ]);
      const sortKey = `${input.sort}|${filterKey}`;
      const query: UserListQuery = {
        limit: input.limit,
        sort: input.sort,
        after: null,
        prefix: input.q ? input.q.toLowerCase() : undefined,
        status: input.status,
        role: input.role,
        lastLoginBefore: parseTime('last_login_before', input.last_login_before, errors),
        lastLoginAfter: parseTime('last_login_after', input.last_login_after, errors),
        neverLoggedIn: input.never_logged_in === true,
      };
      if (errors.length > 0) throw AppError.invalid(errors);
      if (input.cursor) query.after = decodeCursor(input.cursor, sortKey);
      const rows = await users.list(query);
      const page = rows.slice(0, input.limit);
      const last = page[page.length - 1];
      const column = input.sort.replace('-', '') as 'created_at' | 'username' | 'last_login_at';
      const nextCursor =
        rows.length > input.limit && last
          ? encodeCursor({ value: column === 'username' ? last.username : toIso(last[column]), id: last.id }, sortKey)
          : null;
      return { items: page.map(toUserView), next_cursor: nextCursor };
    },

    async listAll(): Promise<UserRow[]> {
      return users.findAll();
    },

    async get(id: string, caller: Caller): Promise<UserView> {
      return toUserView(await visibleUser(id, caller));
    },

    async update(id: string, input: UpdateUserInput, caller: Caller): Promise<UserView> {
      const target = await visibleUser(id, caller);
      const admin = isAdmin(caller.user);
      const errors: FieldError[] = [];
      if (!admin) {
        for (const field of ['roles', 'status'] as const) {
          if (input[field] !== undefined) errors.push({ field, message: 'may only be changed by an admin' });
        }
      }
      const email = input.email === undefined ? undefined : validateEmail(input.email, errors);
      const displayName = input.display_name === undefined ? undefined : validateDisplayName(input.display_name, errors);
      if (errors.length > 0) throw AppError.invalid(errors);

      const roles = input.roles === undefined ? undefined : encodeRoles(input.roles);
      const now = nowIso();
      try {
        const updated = await changing(target.id, async (trx) => {
          const current = await users.findById(target.id, trx);
          if (!current) throw AppError.notFound('The user');
          const staysAdmin = (roles ?? current.roles).split(',').includes('admin') && (input.status ?? current.status) === 'active';
          if (isAdmin(current) && current.status === 'active' && !staysAdmin) {
            const activeAdmins = await users.lockActiveAdmins(trx, deps.dialect === 'postgres');
            if (activeAdmins.filter((adminId) => adminId !== current.id).length === 0) {
              throw new AppError('last_admin', 'This is the last active admin; make another admin first.');
            }
          }
          const changes: Partial<UserRow> = { updated_at: now };
          if (email !== undefined) changes.email = email;
          if (displayName !== undefined) changes.display_name = displayName;
          if (roles !== undefined) changes.roles = roles;
          if (input.status !== undefined) changes.status = input.status;
          const row = await users.update(current.id, changes, trx);
          if (!row) return row;
          const changed = (['email', 'display_name', 'roles', 'status'] as const).filter((field) => row[field] !== current[field]);
          if (changed.length > 0) await events.record(trx, 'user.updated', row.id, { user: toUserView(row), changed });
          if (input.status === 'disabled' && current.status !== 'disabled') {
            await events.record(trx, 'user.disabled', row.id, { user: toUserView(row) });
            await recordRevoked(trx, row.id, await sessions.revokeAllForUser(current.id, now, null, trx), 'user_disabled');
          }
          return row;
        });
        if (!updated) throw AppError.notFound('The user');
        return toUserView(updated);
      } catch (error) {
        throw conflict(error) ?? error;
      }
    },

    async remove(id: string): Promise<void> {
      await changing(id, async (trx) => {
        const current = await users.findById(id, trx);
        if (!current) throw AppError.notFound('The user');
        if (isAdmin(current) && current.status === 'active') {
          const activeAdmins = await users.lockActiveAdmins(trx, deps.dialect === 'postgres');
          if (activeAdmins.filter((adminId) => adminId !== id).length === 0) {
            throw new AppError('last_admin', 'This is the last active admin; make another admin first.');
          }
        }
        // Sessions, refresh tokens and login events go with the user (ON DELETE CASCADE).
        await recordRevoked(trx, id, await sessions.liveIdsForUser(id, trx), 'user_deleted');
        await users.delete(id, trx);
        await events.record(trx, 'user.deleted', id, { user: toUserView(current) });
      });
    },

    async changeOwnPassword(caller: Caller, currentPassword: string, newPassword: string): Promise<void> {
      const { ok } = await hasher.verify(caller.user.password_hash, currentPassword);
      if (!ok) throw AppError.invalid([{ field: 'current_password', message: 'is not the current password' }]);
      assertPasswordPolicy(newPassword, caller.user.username, 'new_password');
      const hash = await hasher.hash(newPassword);
      const now = nowIso();
      await changing(caller.user.id, async (trx) => {
        await users.update(caller.user.id, { password_hash: hash, updated_at: now }, trx);
        await events.record(trx, 'user.password_changed', caller.user.id, { user_id: caller.user.id, by: 'self' });
        // Bearer: the caller's own session stays; Basic has no session, so every session ends.
        const revoked = await sessions.revokeAllForUser(caller.user.id, now, caller.sessionId, trx);
        await recordRevoked(trx, caller.user.id, revoked, 'password_changed');
      });
    },

    /** Sets a password without knowing the old one (operator CLI); ends every session. */
    async setPassword(username: string, newPassword: string): Promise<UserView> {
      const user = await users.findByUsername(normalizeUsername(username));
      if (!user) throw AppError.notFound('The user');
      assertPasswordPolicy(newPassword, user.username);
      const hash = await hasher.hash(newPassword);
      const now = nowIso();
      const updated = await changing(user.id, async (trx) => {
        const row = await users.update(user.id, { password_hash: hash, updated_at: now }, trx);
        await events.record(trx, 'user.password_changed', user.id, { user_id: user.id, by: 'operator' });
        await recordRevoked(trx, user.id, await sessions.revokeAllForUser(user.id, now, null, trx), 'password_changed');
        return row;
      });
      if (!updated) throw AppError.notFound('The user');
      return toUserView(updated);
    },

    /** An admin sets another user's password (for one who lost theirs); ends every session of that user. */
    async resetPassword(id: string, newPassword: string): Promise<void> {
      const user = await users.findById(id);
      if (!user) throw AppError.notFound('The user');
      assertPasswordPolicy(newPassword, user.username, 'new_password');
      const hash = await hasher.hash(newPassword);
      const now = nowIso();
      await changing(user.id, async (trx) => {
        if (!(await users.update(user.id, { password_hash: hash, updated_at: now }, trx))) throw AppError.notFound('The user');
        await events.record(trx, 'user.password_changed', user.id, { user_id: user.id, by: 'admin' });
        await recordRevoked(trx, user.id, await sessions.revokeAllForUser(user.id, now, null, trx), 'password_changed');
      });
    },

    /** An admin ends every live session of a user (a lost device); returns how many ended. */
    async revokeSessions(id: string): Promise<number> {
      return changing(id, async (trx) => {
        if (!(await users.findById(id, trx))) throw AppError.notFound('The user');
        const revoked = await sessions.revokeAllForUser(id, nowIso(), null, trx);
        await recordRevoked(trx, id, revoked, 'revoked_by_admin');
        return revoked.length;
      });
    },

    async findByUsername(username: string): Promise<UserRow | undefined> {
      return users.findByUsername(normalizeUsername(username));
    },

    async loginHistory(id: string, caller: Caller, limit: number, cursor?: string) {
      const user = await visibleUser(id, caller);
      const before = cursor ? decodeCursor(cursor, 'logins').id : null;
      const rows = await logins.listForUser(user.id, limit, before);
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        items: page.map((row) => ({
          at: toIso(row.at),
          success: row.success === 1,
          method: row.method,
          ip: row.ip,
          user_agent: row.user_agent,
        })),
        next_cursor: rows.length > limit && last ? encodeCursor({ value: null, id: last.id }, 'logins') : null,
      };
    },
  };
}

export type UsersService = ReturnType<typeof createUsersService>;
