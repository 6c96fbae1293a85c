// Remembers, for a fraction of a second, what the per-request authentication read from the
// database: a live session with its user (Bearer) and a user row (Basic). Under load one caller
// sends many requests a second, and each used to read the same rows again.
//
// How stale an entry can be is bounded three ways:
// - every entry lives at most `ttlMilliseconds` (GATEHOUSE_AUTH_CACHE_MS, at most 1 s), so a change
//   made anywhere, even straight in the database, is seen within that time;
// - a change made through this instance (sign-out, disable, delete, password, role or profile
//   change, sign-in) calls changed(userId) after its transaction has committed, which forgets the
//   user's entries here at once, and announces the user id to the other instances (Redis pub/sub),
//   which forget theirs as soon as the message arrives;
// - a read that started before such a change is not stored when it finishes, so a request racing
//   with the change cannot put the old rows back.
// Requests that miss while a read of the same rows is under way wait for that read instead of
// starting their own: under load every connection missed at each expiry, about 30 reads of one
// session where one does (RESULTS, seventeenth round). A change forgets the user's reads in flight,
// so a request that arrives after a change never takes a read that started before it. With a TTL
// of 0 nothing is shared: every request reads.
import type { UserRow } from '../users/users.repository.js';

interface Entry {
  userId: string;
  user: UserRow;
  /** Date.now() after which the entry is not used. */
  until: number;
}

export interface LiveSession {
  user: UserRow;
  /** When the session itself expires (ms since the epoch). */
  expiresAt: number;
}

export interface CallerCache {
  /** The live session's user if the cache holds it now, without waiting; undefined otherwise. */
  cachedSession(sessionId: string, userId: string): UserRow | undefined;
  /** The user row if the cache holds it now, without waiting; undefined otherwise. */
  cachedUser(userId: string): UserRow | undefined;
  /** The live session's user, from the cache or from `load` (which reads the database). */
  session(sessionId: string, userId: string, load: () => Promise<LiveSession | undefined>): Promise<UserRow | undefined>;
  /** The user row, from the cache or from `load`. */
  user(userId: string, load: () => Promise<UserRow | undefined>): Promise<UserRow | undefined>;
  /** The user or its sessions were changed by this instance: forget them and tell the others. */
  changed(userId: string): void;
  /** Forgets a user's entries (a change announced by another instance). */
  forget(userId: string): void;
  /** Forgets everything (announcements may have been missed). */
  clear(): void;
  readonly size: number;
}

const MAX_ENTRIES = 10_000;
/** Invalidation marks older than this are dropped; no database read takes this long. */
const MARK_LIFETIME_MS = 60_000;

export function createCallerCache(ttlMilliseconds: number, announce: (userId: string) => void = () => {}): CallerCache {
  const sessions = new Map<string, Entry & { sessionExpiresAt: number }>();
  const users = new Map<string, Entry>();
  // Invalidations are numbered; a read records the number before it starts and is stored only if
  // no invalidation of its user (or of everything) came after.
  let sequence = 0;
  let clearedAt = 0;
  const changedAt = new Map<string, { sequence: number; at: number }>();
  // Reads under way: sessions by session and user id, users by user id.
  const sessionReads = new Map<string, { userId: string; read: Promise<LiveSession | undefined> }>();
  const userReads = new Map<string, Promise<UserRow | undefined>>();

  function storable(userId: string, startedAt: number): boolean {
    if (startedAt <= clearedAt) return false;
    const mark = changedAt.get(userId);
    return mark === undefined || mark.sequence < startedAt;
  }

  function put<T extends Entry>(table: Map<string, T>, key: string, entry: T): void {
    if (table.size >= MAX_ENTRIES) {
      // Maps iterate in insertion order: the first key is the oldest entry.
      const oldest = table.keys().next();
      if (!oldest.done) table.delete(oldest.value);
    }
    table.set(key, entry);
  }

  function forget(userId: string): void {
    sequence += 1;
    changedAt.set(userId, { sequence, at: Date.now() });
    if (changedAt.size > MAX_ENTRIES) {
      const cutoff = Date.now() - MARK_LIFETIME_MS;
      for (const [id, mark] of changedAt) if (mark.at < cutoff) changedAt.delete(id);
      // Still too many marks: forget everything instead of keeping them all.
      if (changedAt.size > MAX_ENTRIES) {
        clear();
        return;
      }
    }
    users.delete(userId);
    for (const [sessionId, entry] of sessions) if (entry.userId === userId) sessions.delete(sessionId);
    userReads.delete(userId);
    for (const [key, flight] of sessionReads) if (flight.userId === userId) sessionReads.delete(key);
  }

  function clear(): void {
    sequence += 1;
    clearedAt = sequence;
    changedAt.clear();
    sessions.clear();
    users.clear();
    sessionReads.clear();
    userReads.clear();
  }

  /** `read`, shared by the requests that ask for `key` until it ends (unless forgotten sooner). */
  function shared<T>(reads: Map<string, T>, key: string, flight: T, read: Promise<unknown>): void {
    reads.set(key, flight);
    const done = () => {
      if (reads.get(key) === flight) reads.delete(key);
    };
    read.then(done, done);
  }

  function cachedSession(sessionId: string, userId: string): UserRow | undefined {
    if (ttlMilliseconds <= 0) return undefined;
    const cached = sessions.get(sessionId);
    if (!cached) return undefined;
    const now = Date.now();
    if (cached.until > now && cached.sessionExpiresAt > now && cached.userId === userId) return cached.user;
    sessions.delete(sessionId);
    return undefined;
  }

  function cachedUser(userId: string): UserRow | undefined {
    if (ttlMilliseconds <= 0) return undefined;
    const cached = users.get(userId);
    if (!cached) return undefined;
    if (cached.until > Date.now()) return cached.user;
    users.delete(userId);
    return undefined;
  }

  return {
    cachedSession,
    cachedUser,

    async session(sessionId, userId, load) {
      const cached = cachedSession(sessionId, userId);
      if (cached) return cached;
      const key = `${sessionId} ${userId}`;
      let flight = ttlMilliseconds > 0 ? sessionReads.get(key) : undefined;
      if (!flight) {
        const startedAt = ++sequence;
        const read = load().then((live) => {
          if (live && live.user.id === userId && ttlMilliseconds > 0 && storable(userId, startedAt)) {
            put(sessions, sessionId, { userId, user: live.user, until: Date.now() + ttlMilliseconds, sessionExpiresAt: live.expiresAt });
          }
          return live;
        });
        flight = { userId, read };
        if (ttlMilliseconds > 0) shared(sessionReads, key, flight, read);
      }
      const live = await flight.read;
      return live && live.user.id === userId ? live.user : undefined;
    },

    async user(userId, load) {
      const cached = cachedUser(userId);
      if (cached) return cached;
      let read = ttlMilliseconds > 0 ? userReads.get(userId) : undefined;
      if (!read) {
        const startedAt = ++sequence;
        read = load().then((user) => {
          if (user && ttlMilliseconds > 0 && storable(userId, startedAt))
            put(users, userId, { userId, user, until: Date.now() + ttlMilliseconds });
          return user;
        });
        if (ttlMilliseconds > 0) shared(userReads, userId, read, read);
      }
      return read;
    },

    changed(userId) {
      forget(userId);
      announce(userId);
    },
    forget,
    clear,
    get size() {
      return sessions.size + users.size;
    },
  };
}
