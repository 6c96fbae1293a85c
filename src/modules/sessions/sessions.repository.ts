// Kysely queries on sessions and refresh_tokens. Refresh tokens are stored as SHA-256 hashes only.
import type { Kysely, Selectable } from 'kysely';
import { prepared } from '../../db/prepared.js';
import type { Database, SessionsTable } from '../../db/schema.js';
import { queryTemplate } from '../../db/template.js';
import type { NewEvent } from '../events/events.repository.js';
import type { LoginEventRow } from '../logins/logins.repository.js';
import { type Executor, loginMovesForward, USER_COLUMN_NAMES, type UserRow } from '../users/users.repository.js';
import type { LiveSession } from './caller-cache.js';

export type SessionRow = Selectable<SessionsTable>;

export interface SignInWrites {
  session: SessionRow;
  refreshTokenHash: string;
  login: LoginEventRow;
  /** session.created, from EventRecorder.toRow. */
  event: NewEvent;
}

/** recordSignIn's statement's values, flat, as its template fills them in. */
type SignInValues = {
  sessionId: SessionRow['id'];
  userId: SessionRow['user_id'];
  at: SessionRow['created_at'];
  expiresAt: SessionRow['expires_at'];
  revokedAt: SessionRow['revoked_at'];
  ip: SessionRow['ip'];
  userAgent: SessionRow['user_agent'];
  tokenHash: string;
  loginId: LoginEventRow['id'];
  loginUserId: LoginEventRow['user_id'];
  loginAt: LoginEventRow['at'];
  loginSuccess: LoginEventRow['success'];
  loginMethod: LoginEventRow['method'];
  loginIp: LoginEventRow['ip'];
  loginUserAgent: LoginEventRow['user_agent'];
  eventId: NewEvent['id'];
  eventType: NewEvent['type'];
  eventSubject: NewEvent['subject'];
  eventTime: NewEvent['time'];
  eventData: NewEvent['data'];
};

export function createSessionsRepository(db: Kysely<Database>) {
  const refreshTokenRow = (session: SessionRow, tokenHash: string) => ({
    token_hash: tokenHash,
    session_id: session.id,
    created_at: session.created_at,
    used_at: null,
  });

  // recordSignIn's statement, built and compiled once (db/template.ts): its values by name.
  const signInStatement = queryTemplate((v: SignInValues) =>
    db
      .with('new_session', (q) =>
        q
          .insertInto('sessions')
          .values({
            id: v.sessionId,
            user_id: v.userId,
            created_at: v.at,
            expires_at: v.expiresAt,
            revoked_at: v.revokedAt,
            ip: v.ip,
            user_agent: v.userAgent,
          })
          .returning('id'),
      )
      .with('new_refresh_token', (q) =>
        q
          .insertInto('refresh_tokens')
          .values({ token_hash: v.tokenHash, session_id: v.sessionId, created_at: v.at, used_at: null })
          .returning('token_hash'),
      )
      .with('new_login', (q) =>
        q
          .insertInto('login_events')
          .values({
            id: v.loginId,
            user_id: v.loginUserId,
            at: v.loginAt,
            success: v.loginSuccess,
            method: v.loginMethod,
            ip: v.loginIp,
            user_agent: v.loginUserAgent,
          })
          .returning('id'),
      )
      .with('new_event', (q) =>
        q
          .insertInto('outbox_events')
          .values({ id: v.eventId, type: v.eventType, subject: v.eventSubject, time: v.eventTime, data: v.eventData, published_at: null })
          .returning('seq'),
      )
      .updateTable('users')
      .set({ last_login_at: v.at })
      .where('id', '=', v.userId)
      .where(loginMovesForward(v.at))
      .returning(USER_COLUMN_NAMES),
  );

  return {
    async insert(session: SessionRow, refreshTokenHash: string, trx: Executor = db): Promise<void> {
      await trx.insertInto('sessions').values(session).execute();
      await trx.insertInto('refresh_tokens').values(refreshTokenRow(session, refreshTokenHash)).execute();
    },

    /**
     * PostgreSQL: everything a sign-in writes, as one statement (its data-modifying WITH parts and
     * the main UPDATE succeed or fail together, without a transaction around them): the session and
     * its refresh token, the login event, session.created in the outbox, and the user's
     * last_login_at, whose RETURNING is the user as the sign-in leaves it (undefined when a later
     * sign-in had already moved it). One round trip where the transaction took eight (BEGIN, five
     * statements, COMMIT), each costing the event loop a socket write and PostgreSQL a wake-up while
     * sign-ins saturate the cores (bench/RESULTS.md, sixth round). SQLite, in process, keeps the
     * transaction.
     */
    async recordSignIn(writes: SignInWrites): Promise<UserRow | undefined> {
      const { session, refreshTokenHash, login, event } = writes;
      const query = signInStatement({
        sessionId: session.id,
        userId: session.user_id,
        at: session.created_at,
        expiresAt: session.expires_at,
        revokedAt: session.revoked_at,
        ip: session.ip,
        userAgent: session.user_agent,
        tokenHash: refreshTokenHash,
        loginId: login.id,
        loginUserId: login.user_id,
        loginAt: login.at,
        loginSuccess: login.success,
        loginMethod: login.method,
        loginIp: login.ip,
        loginUserAgent: login.user_agent,
        eventId: event.id,
        eventType: event.type,
        eventSubject: event.subject,
        eventTime: event.time,
        eventData: event.data,
      });
      return (await db.executeQuery(prepared(query))).rows[0];
    },

    /** The live session and its active user in one query: the check a Bearer request makes. */
    async findLive(sessionId: string, now: string): Promise<LiveSession | undefined> {
      const row = await db
        .selectFrom('sessions')
        .innerJoin('users', 'users.id', 'sessions.user_id')
        .selectAll('users')
        .select('sessions.expires_at as session_expires_at')
        .where('sessions.id', '=', sessionId)
        .where('sessions.revoked_at', 'is', null)
        .where('sessions.expires_at', '>', now)
        .where('users.status', '=', 'active')
        .executeTakeFirst();
      if (!row) return undefined;
      const { session_expires_at, ...user } = row;
      return { user, expiresAt: new Date(session_expires_at).getTime() };
    },

    async findRefreshToken(tokenHash: string, trx: Executor = db) {
      return trx
        .selectFrom('refresh_tokens')
        .innerJoin('sessions', 'sessions.id', 'refresh_tokens.session_id')
        .select([
          'refresh_tokens.token_hash',
          'refresh_tokens.used_at',
          'sessions.id as session_id',
          'sessions.user_id',
          'sessions.revoked_at',
          'sessions.expires_at',
        ])
        .where('refresh_tokens.token_hash', '=', tokenHash)
        .executeTakeFirst();
    },

    /** Marks a refresh token used; false when another request used it first. */
    async markRefreshTokenUsed(tokenHash: string, at: string, trx: Executor = db): Promise<boolean> {
      const result = await trx
        .updateTable('refresh_tokens')
        .set({ used_at: at })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async insertRefreshToken(sessionId: string, tokenHash: string, at: string, trx: Executor = db): Promise<void> {
      await trx
        .insertInto('refresh_tokens')
        .values({ token_hash: tokenHash, session_id: sessionId, created_at: at, used_at: null })
        .execute();
    },

    /** Revokes one session; true when it was live until now. */
    async revoke(sessionId: string, at: string, trx: Executor = db): Promise<boolean> {
      const result = await trx
        .updateTable('sessions')
        .set({ revoked_at: at })
        .where('id', '=', sessionId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** Revokes every live session of a user, except one (the caller's own) when given; their ids. */
    async revokeAllForUser(userId: string, at: string, exceptSessionId: string | null, trx: Executor = db): Promise<string[]> {
      let select = trx.selectFrom('sessions').select('id').where('user_id', '=', userId).where('revoked_at', 'is', null);
      if (exceptSessionId) select = select.where('id', '!=', exceptSessionId);
      const ids = (await select.execute()).map((row) => row.id);
      if (ids.length > 0) {
        await trx.updateTable('sessions').set({ revoked_at: at }).where('id', 'in', ids).where('revoked_at', 'is', null).execute();
      }
      return ids;
    },

    /** Ids of a user's live sessions (they end with the user when it is deleted). */
    async liveIdsForUser(userId: string, trx: Executor = db): Promise<string[]> {
      const rows = await trx.selectFrom('sessions').select('id').where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
      return rows.map((row) => row.id);
    },
  };
}

export type SessionsRepository = ReturnType<typeof createSessionsRepository>;
