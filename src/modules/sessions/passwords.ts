// Password hashing: argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1; OWASP Password
// Storage Cheat Sheet), stored as PHC strings. verify() reports when a stored hash was made with
// other parameters, so sign-in can rehash it. The `test` profile is cheap and only for tests.
import argon2 from 'argon2';
import type { PasswordHashProfile } from '../../config.js';

export interface HashParameters {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export const HASH_PROFILES: Record<PasswordHashProfile, HashParameters> = {
  owasp: { memoryCost: 19_456, timeCost: 2, parallelism: 1 },
  test: { memoryCost: 1_024, timeCost: 1, parallelism: 1 },
};

export type HashOperation = 'hash' | 'verify';

export interface PasswordHasher {
  readonly parameters: HashParameters;
  hash(password: string): Promise<string>;
  /** ok: the password matches; needsRehash: the stored hash should be replaced by hash(password). */
  verify(storedHash: string, password: string): Promise<{ ok: boolean; needsRehash: boolean }>;
  /** Spends the same work as a real verify, for callers that have no stored hash (unknown user). */
  verifyDummy(password: string): Promise<void>;
}

export async function createPasswordHasher(
  profile: PasswordHashProfile,
  observe: (operation: HashOperation, seconds: number) => void = () => {},
): Promise<PasswordHasher> {
  const parameters = HASH_PROFILES[profile];
  const options = { type: argon2.argon2id as 2, ...parameters };

  async function timed<T>(operation: HashOperation, work: () => Promise<T>): Promise<T> {
    const started = process.hrtime.bigint();
    try {
      return await work();
    } finally {
      observe(operation, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  const hash = (password: string) => timed('hash', () => argon2.hash(password, options));
  // A hash of a random secret made with the live parameters: verifying against it costs the same.
  const dummyHash = await argon2.hash(crypto.randomUUID(), options);

  return {
    parameters,
    hash,
    async verify(storedHash, password) {
      if (!storedHash.startsWith('$argon2')) return { ok: false, needsRehash: false };
      let ok = false;
      try {
        ok = await timed('verify', () => argon2.verify(storedHash, password));
      } catch {
        // A malformed stored hash verifies nothing.
        return { ok: false, needsRehash: false };
      }
      return { ok, needsRehash: ok && argon2.needsRehash(storedHash, options) };
    },
    async verifyDummy(password) {
      await timed('verify', () => argon2.verify(dummyHash, password));
    },
  };
}
