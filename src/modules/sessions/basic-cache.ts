// Remembers successful HTTP Basic verifications for a short time, so that Basic-authenticated API
// calls do not pay an argon2id hash each. The key is an HMAC of the credentials under a secret
// made at process start: the password itself is never kept, and the table is useless outside
// this process. A hit is honoured only while the user's stored hash is still the one it was
// verified against and the user is active: a password change, disable or delete takes effect on
// the next request on every instance (the user row is read on every request anyway), and a role
// change needs nothing at all (roles come from that row).
import { createHmac, randomBytes } from 'node:crypto';

interface Entry {
  userId: string;
  passwordHash: string;
  expiresAt: number;
}

export interface BasicAuthCache {
  lookup(username: string, password: string): { userId: string; passwordHash: string } | null;
  remember(username: string, password: string, userId: string, passwordHash: string): void;
  forget(username: string, password: string): void;
  readonly size: number;
}

const MAX_ENTRIES = 10_000;

export function createBasicAuthCache(ttlSeconds: number): BasicAuthCache {
  const secret = randomBytes(32);
  const entries = new Map<string, Entry>();
  const keyOf = (username: string, password: string) =>
    createHmac('sha256', secret).update(username.toLowerCase()).update('\u0000').update(password).digest('base64url');

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
      return { userId: entry.userId, passwordHash: entry.passwordHash };
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
  };
}
