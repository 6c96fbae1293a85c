// Remembers successful HTTP Basic verifications for a short time, so that Basic-authenticated API
// calls do not pay an argon2id hash each. The key is a SHA-256 of the credentials behind a random
// secret made at process start: the table never holds a password, and is useless outside this
// process. (A one-shot hash rather than an HMAC: the keys never leave the process, so there is
// nothing to forge, and it costs a fifth of createHmac, which was 5-7% of a Basic request in bench
// S2.) A hit is honoured only while the user's stored hash is still the one it was verified against
// and the user is active, as read through the authentication cache (caller-cache.ts): a password
// change, disable or delete takes effect at once on the instance that made it and within
// GATEHOUSE_AUTH_CACHE_MS everywhere; a role change needs nothing at all (roles come from that row).
// A keep-alive connection keeps the last Basic header that authenticated on it, with its entry's
// grant (the same checks), while it is open: src/http/auth.ts.
import { hash, randomBytes } from 'node:crypto';

interface Entry {
  userId: string;
  passwordHash: string;
  expiresAt: number;
}

/** A Basic credential's remembered verification: whose it is, against which hash, until when. */
export interface BasicGrant {
  userId: string;
  passwordHash: string;
  /** A Date.now() time: the remembered verification ends then (ttlSeconds after it was made). */
  expiresAt: number;
}

export interface BasicAuthCache {
  /** The remembered verification of this credential, while it lasts. */
  lookup(username: string, password: string): BasicGrant | null;
  remember(username: string, password: string, userId: string, passwordHash: string): void;
  forget(username: string, password: string): void;
  /**
   * Runs `verify` for this credential unless a verification of it is running already; then waits
   * for that one to settle instead and returns undefined, and the caller looks in the cache again.
   */
  verifyOnce<T>(username: string, password: string, verify: () => Promise<T>): Promise<T | undefined>;
  readonly size: number;
}

const MAX_ENTRIES = 10_000;

export function createBasicAuthCache(ttlSeconds: number): BasicAuthCache {
  const secret = randomBytes(32).toString('base64');
  const entries = new Map<string, Entry>();
  // Verifications running now, by key. When a busy client's entry expires, all its connections
  // miss at once: without this, each paid a hash, and those the hashing queue could not take were
  // shed as 503 (34 hashes and 32 503s in four 5 s runs of bench S2's load).
  const verifying = new Map<string, Promise<unknown>>();
  // The username's length goes in first, so that no other split of the same text gives the same key.
  const keyOf = (username: string, password: string) => {
    const name = username.toLowerCase();
    return hash('sha256', `${secret}:${name.length}:${name}:${password}`, 'base64url');
  };

  return {
    get size() {
      return entries.size;
    },
    lookup(username, password) {
      if (ttlSeconds === 0) return null;
      const key = keyOf(username, password);
      const entry = entries.get(key);
      if (!entry) return null;
      if (entry.expiresAt <= Date.now()) {
        entries.delete(key);
        return null;
      }
      return { userId: entry.userId, passwordHash: entry.passwordHash, expiresAt: entry.expiresAt };
    },
    remember(username, password, userId, passwordHash) {
      if (ttlSeconds === 0) return;
      if (entries.size >= MAX_ENTRIES) {
        // Maps iterate in insertion order: drop the oldest.
        const oldest = entries.keys().next().value;
        if (oldest !== undefined) entries.delete(oldest);
      }
      entries.set(keyOf(username, password), { userId, passwordHash, expiresAt: Date.now() + ttlSeconds * 1000 });
    },
    forget(username, password) {
      entries.delete(keyOf(username, password));
    },
    async verifyOnce(username, password, verify) {
      // With nothing remembered, a wait would gain nothing: each request verifies at once.
      if (ttlSeconds === 0) return verify();
      const key = keyOf(username, password);
      const running = verifying.get(key);
      if (running) {
        await running.catch(() => undefined);
        return undefined;
      }
      const started = verify();
      verifying.set(key, started);
      try {
        return await started;
      } finally {
        verifying.delete(key);
      }
    },
  };
}
