// Sign-in and proof of identity: password sign-in (JSON or Basic), refresh-token rotation with
// reuse detection (RFC 9700 §4.14.2), logout, and the per-request checks for Basic and Bearer
// callers. Every sign-in failure is the same 401 and does the same argon2id work.
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Config } from '../../config.js';
import type { Database, Dialect } from '../../db/schema.js';
import { AppError } from '../../http/errors.js';
import { randomToken, uuidv7 } from '../../lib/ids.js';
import { addSeconds, nowIso } from '../../lib/time.js';
import type { EventRecorder } from '../events/events.js';
import type { LoginsRepository } from '../logins/logins.repository.js';
import type { UserRow, UsersRepository } from '../users/users.repository.js';
import { normalizeUsername } from '../users/users.service.js';
import { type Caller, toUserView, type UserView } from '../users/users.view.js';
import type { BasicAuthCache, BasicGrant } from './basic-cache.js';
import type { CallerCache } from './caller-cache.js';
import { RecentFailureTimes } from './failure-times.js';
import type { PasswordHasher } from './passwords.js';
import type { SessionsRepository } from './sessions.repository.js';
import type { SignInThrottle } from './throttle.js';
import type { TokenIssuer } from './tokens.js';

export type LoginMethod = 'password' | 'basic';

export interface ClientContext {
  ip: string | null;
  userAgent: string | null;
}

export interface TokenPair {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
  user: UserView;
}

export interface SessionsServiceDeps {
  db: Kysely<Database>;
  dialect: Dialect;
  config: Pick<Config, 'accessTokenTtlSeconds' | 'sessionTtlSeconds' | 'lastSeenIntervalSeconds'>;
  users: UsersRepository;
  sessions: SessionsRepository;
  logins: LoginsRepository;
  hasher: PasswordHasher;
  tokens: TokenIssuer;
  throttle: SignInThrottle;
  basicCache: BasicAuthCache;
  /** What the per-request checks read, remembered briefly; told of every change made here. */
  callerCache: CallerCache;
  onThrottled: () => void;
  events: EventRecorder;
  /** Reports a failure of background work (last_seen_at writes) that no request waits for. */
  onBackgroundError: (error: unknown) => void;
}

const USER_AGENT_MAX = 512;

function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function createSessionsService(deps: SessionsServiceDeps) {
  const { db, config, users, sessions, logins, hasher, tokens, throttle, basicCache, callerCache, events } = deps;
  // Last time this instance wrote last_seen_at per user; the database check bounds other instances.
  const lastSeenWrites = new Map<string, number>();
  // How long recent failed sign-ins took: a blocked attempt takes as long as one of them.
  const failureTimes = new RecentFailureTimes();

  function loginEvent(userId: string | null, success: boolean, method: LoginMethod, context: ClientContext, at: string) {
    return {
      id: uuidv7(),
      user_id: userId,
      at,
      success: success ? 1 : 0,
      method,
      ip: context.ip,
      user_agent: context.userAgent ? context.userAgent.slice(0, USER_AGENT_MAX) : null,
    };
  }

  /**
   * Checks a username and password. Unknown user, wrong password and disabled user all return
   * null after the same work: one throttle charge, one argon2id verify (against a dummy hash for
   * an unknown user) and one failure event (with no user for an unknown username). A success is
   * recorded by the caller, where it is a sign-in. A blocked attempt is a 429 that verifies
   * nothing but takes as long as a recent failed attempt did (failure-times.ts), so its timing tells
   * nothing either.
   * When the hashing pool would refuse the verify, the answer is that 503 before anything else: no
   * lookup, no throttle charge (the refusal does not depend on the username either).
   */
  async function verifyCredentials(
    rawUsername: string,
    password: string,
    method: LoginMethod,
    context: ClientContext,
  ): Promise<UserRow | null> {
    const refusal = hasher.refusal();
    if (refusal) await refusal;
    let attempt: Awaited<ReturnType<SignInThrottle['begin']>>;
    try {
      attempt = await throttle.begin(rawUsername, context.ip ?? 'unknown');
    } catch (error) {
      // Both paths have paid for the throttle check; the blocked one now waits what the rest of a
      // recent failed attempt (lookup, verify, event) took.
      deps.onThrottled();
      await new Promise((resolve) => setTimeout(resolve, failureTimes.pick() ?? hasher.typicalVerifyMilliseconds()));
      throw error;
    }
    // Measured from here, so that a slowed-down attempt's wait does not count.
    const started = performance.now();
    let user: UserRow | undefined;
    let ok = false;
    let needsRehash = false;
    try {
      user = await users.findByUsername(normalizeUsername(rawUsername));
      if (user) ({ ok, needsRehash } = await hasher.verify(user.password_hash, password));
      else await hasher.verifyDummy(password);
    } catch (error) {
      // No password was checked (shed as 503 overloaded, or the database did not answer): not a
      // failed attempt, so an outage never locks anyone out once it is over.
      await attempt.cancel();
      throw error;
    }
    const success = ok && user?.status === 'active';
    await attempt.finish(success);
    if (!success || !user) {
      await logins.insert(loginEvent(user?.id ?? null, false, method, context, nowIso()));
      failureTimes.add(performance.now() - started);
      return null;
    }
    if (needsRehash) {
      const rehashed = await hasher.hash(password);
      await users.update(user.id, { password_hash: rehashed });
      callerCache.changed(user.id);
      user.password_hash = rehashed;
    }
    return user;
  }

  /**
   * The user as a sign-in leaves it: the row its last_login_at update returned, or, when a later
   * sign-in had already moved it, the row as stored now.
   */
  async function freshUser(user: UserRow, recorded: UserRow | undefined): Promise<UserRow> {
    return recorded ?? (await users.findById(user.id)) ?? user;
  }

  /** Ends a session and records session.revoked, once, in one transaction. */
  async function revokeSession(userId: string, sessionId: string, reason: string): Promise<void> {
    await db.transaction().execute(async (trx) => {
      if (await sessions.revoke(sessionId, nowIso(), trx)) {
        await events.record(trx, 'session.revoked', userId, { session_id: sessionId, reason });
      }
    });
    callerCache.changed(userId);
  }

  async function issuePair(user: UserRow, sessionId: string, refreshToken: string): Promise<TokenPair> {
    return {
      access_token: await tokens.signAccessToken({ userId: user.id, sessionId }),
      token_type: 'Bearer',
      expires_in: config.accessTokenTtlSeconds,
      refresh_token: refreshToken,
      user: toUserView(user),
    };
  }

  function touchLastSeen(user: UserRow): void {
    const now = Date.now();
    const last = lastSeenWrites.get(user.id) ?? 0;
    if (now - last < config.lastSeenIntervalSeconds * 1000) return;
    lastSeenWrites.set(user.id, now);
    if (lastSeenWrites.size > 100_000) lastSeenWrites.clear();
    users.touchLastSeen(user.id, new Date(now).toISOString(), config.lastSeenIntervalSeconds).catch(deps.onBackgroundError);
  }

  /** The caller of an ordinary request; its last_seen_at moves (at most every interval). */
  function seen(user: UserRow, method: 'basic' | 'bearer', sessionId: string | null): Caller {
    touchLastSeen(user);
    return { user, method, sessionId };
  }

  /** A remembered Basic credential's caller, while its user is active and has the hash it was verified against. */
  function rememberedBasic(user: UserRow | undefined, remembered: { passwordHash: string }): Caller | undefined {
    if (user?.status !== 'active' || user.password_hash !== remembered.passwordHash) return undefined;
    return seen(user, 'basic', null);
  }

  /**
   * authenticateBasic's answer when the credential and its user are both in memory, without
   * waiting (most requests of a busy caller: the per-request hook then needs no promise);
   * undefined when authenticateBasic must be asked.
   */
  function basicFromCache(username: string, password: string): Caller | undefined {
    const grant = basicGrant(username, password);
    return grant ? basicFromGrant(grant) : undefined;
  }

  /**
   * The remembered verification of a Basic credential, while it lasts: for basicFromCache, and for
   * a connection to keep once the credential has authenticated a request on it (auth.ts); null
   * when nothing is remembered (the cache is off).
   */
  function basicGrant(username: string, password: string): BasicGrant | null {
    return basicCache.lookup(username, password);
  }

  /**
   * The caller of a remembered Basic credential, without waiting: while the verification has not
   * expired and the user is active and has the hash it was verified against, as read through the
   * authentication cache; undefined otherwise. A connection's kept grant gets its answer without
   * decoding or hashing the credential (auth.ts).
   */
  function basicFromGrant(grant: BasicGrant): Caller | undefined {
    if (grant.expiresAt <= Date.now()) return undefined;
    return rememberedBasic(callerCache.cachedUser(grant.userId), grant);
  }

  /** authenticateBearer's answer from memory, without waiting; undefined when it must be asked. */
  function bearerFromCache(accessToken: string): Caller | null | undefined {
    const claims = tokens.verifiedClaims(accessToken);
    if (!claims) return claims;
    const user = callerCache.cachedSession(claims.sessionId, claims.userId);
    return user && seen(user, 'bearer', claims.sessionId);
  }

  return {
    basicFromCache,
    basicGrant,
    basicFromGrant,
    bearerFromCache,

    /** POST /v1/sessions: a new session with an access and a refresh token. */
    async signIn(username: string, password: string, method: LoginMethod, context: ClientContext): Promise<TokenPair> {
      const user = await verifyCredentials(username, password, method, context);
      if (!user) throw AppError.unauthorized();
      const now = nowIso();
      const sessionId = uuidv7();
      const refreshToken = randomToken(32);
      const refreshTokenHash = hashRefreshToken(refreshToken);
      const session = {
        id: sessionId,
        user_id: user.id,
        created_at: now,
        expires_at: addSeconds(now, config.sessionTtlSeconds),
        revoked_at: null,
        ip: context.ip,
        user_agent: context.userAgent ? context.userAgent.slice(0, USER_AGENT_MAX) : null,
      };
      const login = loginEvent(user.id, true, method, context, now);
      const created = { session_id: sessionId, method, expires_at: session.expires_at };
      let recorded: UserRow | undefined;
      if (deps.dialect === 'postgres') {
        const event = events.toRow('session.created', user.id, created);
        recorded = await sessions.recordSignIn({ session, refreshTokenHash, login, event });
        events.written();
      } else
        recorded = await db.transaction().execute(async (trx) => {
          await sessions.insert(session, refreshTokenHash, trx);
          const updated = await users.recordLogin(user.id, now, trx);
          await logins.insert(login, trx);
          await events.record(trx, 'session.created', user.id, created);
          return updated;
        });
      // last_login_at moved: cached copies of the user row are out of date.
      callerCache.changed(user.id);
      return issuePair(await freshUser(user, recorded), sessionId, refreshToken);
    },

    /** GET /api/login: a Basic sign-in that records the login but opens no session. */
    async basicLogin(username: string, password: string, context: ClientContext): Promise<UserRow> {
      const user = await verifyCredentials(username, password, 'basic', context);
      if (!user) throw AppError.unauthorized();
      const now = nowIso();
      const recorded = await db.transaction().execute(async (trx) => {
        const updated = await users.recordLogin(user.id, now, trx);
        await logins.insert(loginEvent(user.id, true, 'basic', context, now), trx);
        return updated;
      });
      callerCache.changed(user.id);
      return freshUser(user, recorded);
    },

    /** POST /v1/sessions/refresh: rotates the refresh token; a reused one ends the session. */
    async refresh(refreshToken: string): Promise<TokenPair> {
      const tokenHash = hashRefreshToken(refreshToken);
      const now = nowIso();
      const outcome = await db.transaction().execute(async (trx) => {
        const found = await sessions.findRefreshToken(tokenHash, trx);
        if (!found || found.revoked_at !== null || new Date(found.expires_at).getTime() <= Date.now()) return null;
        if (found.used_at !== null || !(await sessions.markRefreshTokenUsed(tokenHash, now, trx))) {
          return { reused: true as const, sessionId: found.session_id, userId: found.user_id };
        }
        const user = await users.findById(found.user_id, trx);
        if (user?.status !== 'active') return null;
        const next = randomToken(32);
        await sessions.insertRefreshToken(found.session_id, hashRefreshToken(next), now, trx);
        return { reused: false as const, sessionId: found.session_id, user, next };
      });
      if (!outcome) throw AppError.unauthorized();
      if (outcome.reused) {
        // Someone holds a token that was already rotated: end the session for everybody.
        await revokeSession(outcome.userId, outcome.sessionId, 'refresh_token_reused');
        throw AppError.unauthorized();
      }
      return issuePair(outcome.user, outcome.sessionId, outcome.next);
    },

    async revoke(userId: string, sessionId: string): Promise<void> {
      await revokeSession(userId, sessionId, 'signed_out');
    },

    /**
     * An ordinary Basic-authenticated request: not a sign-in, so only last_seen_at moves. A
     * credential verified in the last few seconds is taken from the cache, without a hash, while
     * the user is still active and its stored hash is still the one it was verified against.
     */
    async authenticateBasic(username: string, password: string, context: ClientContext): Promise<Caller | null> {
      const fromCache = async () => {
        const remembered = basicCache.lookup(username, password);
        if (!remembered) return undefined;
        const caller = rememberedBasic(await callerCache.user(remembered.userId, () => users.findById(remembered.userId)), remembered);
        if (!caller) basicCache.forget(username, password);
        return caller;
      };
      const verify = async () => {
        const user = await verifyCredentials(username, password, 'basic', context);
        if (user) basicCache.remember(username, password, user.id, user.password_hash);
        return user;
      };
      const cached = await fromCache();
      if (cached) return cached;
      // Requests that arrive while the same credential is being verified wait for that hash and
      // take its success from the cache. A failure is not shared: each such request then verifies
      // (and is throttled and recorded) on its own, as it would have without the wait.
      const verified = await basicCache.verifyOnce(username, password, verify);
      if (verified !== undefined) return verified && seen(verified, 'basic', null);
      const shared = await fromCache();
      if (shared) return shared;
      const user = await verify();
      return user && seen(user, 'basic', null);
    },

    /**
     * A Bearer request: a valid token whose session is still live and whose user is active, as read
     * from the primary at most GATEHOUSE_AUTH_CACHE_MS ago and changed nowhere since (caller-cache.ts).
     */
    async authenticateBearer(accessToken: string): Promise<Caller | null> {
      const claims = await tokens.verifyAccessToken(accessToken);
      if (!claims) return null;
      const user = await callerCache.session(claims.sessionId, claims.userId, () => sessions.findLive(claims.sessionId, nowIso()));
      return user ? seen(user, 'bearer', claims.sessionId) : null;
    },
  };
}

export type SessionsService = ReturnType<typeof createSessionsService>;
