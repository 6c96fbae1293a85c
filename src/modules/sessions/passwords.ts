// Password hashing: argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1; OWASP Password
// Storage Cheat Sheet), stored as PHC strings. verify() also reads imported hashes (legacy-hashes.ts)
// and reports when a stored hash is not argon2id with the live parameters, so sign-in can rehash
// it. The `test` profile is cheap and only for tests.
import argon2 from 'argon2';
import type { PasswordHashProfile } from '../../config.js';
import { AppError } from '../../http/errors.js';
import type { HashPool } from './hash-pool.js';
import { parsePasswordHash, verifyImportedHash } from './legacy-hashes.js';

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
  /** A recent typical verify time in ms (moving average), for answers that must take as long. */
  typicalVerifyMilliseconds(): number;
  /** The 503 a verify asked for now would get from the pool (HashPool.refusal), or undefined. */
  refusal(): Promise<never> | undefined;
}

export interface HasherOptions {
  /** Bounds how many hashes run and wait at once; without one, every call runs at once. */
  pool?: HashPool;
  observe?: (operation: HashOperation, seconds: number) => void;
  countVerification?: (result: 'match' | 'mismatch' | 'dummy') => void;
}

export async function createPasswordHasher(profile: PasswordHashProfile, hasherOptions: HasherOptions = {}): Promise<PasswordHasher> {
  const parameters = HASH_PROFILES[profile];
  const options = { type: argon2.argon2id as 2, ...parameters };
  const observe = hasherOptions.observe ?? (() => {});
  const pool = hasherOptions.pool;
  const countVerification = hasherOptions.countVerification ?? (() => {});
  let typicalVerifyMs = 0;

  async function timed<T>(operation: HashOperation, work: () => Promise<T>): Promise<T> {
    const run = async () => {
      const started = process.hrtime.bigint();
      try {
        return await work();
      } finally {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        observe(operation, seconds);
        if (operation === 'verify') typicalVerifyMs = typicalVerifyMs === 0 ? seconds * 1000 : typicalVerifyMs * 0.9 + seconds * 100;
      }
    };
    return pool ? pool.run(run) : run();
  }

  const hash = (password: string) => timed('hash', () => argon2.hash(password, options));
  // A hash of a random secret made with the live parameters: verifying against it costs the same.
  const dummyHash = await argon2.hash(crypto.randomUUID(), options);
  const started = process.hrtime.bigint();
  await argon2.verify(dummyHash, crypto.randomUUID());
  typicalVerifyMs = Number(process.hrtime.bigint() - started) / 1e6;

  return {
    parameters,
    hash,
    async verify(storedHash, password) {
      const format = parsePasswordHash(storedHash);
      if (!format) {
        // An unreadable or too costly stored hash verifies nothing, after the work a real check does.
        await timed('verify', () => argon2.verify(dummyHash, password));
        countVerification('mismatch');
        return { ok: false, needsRehash: false };
      }
      let ok = false;
      try {
        ok = await timed('verify', () =>
          format.scheme === 'argon2' ? argon2.verify(storedHash, password) : verifyImportedHash(format, password),
        );
        countVerification(ok ? 'match' : 'mismatch');
      } catch (error) {
        // A stored hash that fails to compute verifies nothing; a full hashing queue is the caller's 503.
        if (error instanceof AppError) throw error;
        return { ok: false, needsRehash: false };
      }
      // Anything but argon2id with the live parameters is replaced at the first successful sign-in.
      const live = format.scheme === 'argon2' && format.variant === 'argon2id' && !argon2.needsRehash(storedHash, options);
      return { ok, needsRehash: ok && !live };
    },
    async verifyDummy(password) {
      await timed('verify', () => argon2.verify(dummyHash, password));
      countVerification('dummy');
    },
    typicalVerifyMilliseconds: () => typicalVerifyMs,
    refusal: () => pool?.refusal(),
  };
}
