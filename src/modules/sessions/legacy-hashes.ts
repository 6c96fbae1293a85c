// Password hashes imported from other systems, verified so that sign-in can replace them with
// argon2id: argon2i/d/id PHC strings (RFC 9106), scrypt PHC strings `$scrypt$ln=,r=,p=$salt$hash`
// (RFC 7914; PHC string format spec), bcrypt `$2a$`/`$2b$`/`$2y$` (via bcryptjs) and Werkzeug's
// `pbkdf2:<sha1|sha256|sha512>:<iterations>$<salt>$<hex>` (RFC 8018 PBKDF2-HMAC, salt as UTF-8 text).
// A hash that is malformed or whose cost is out of bounds is not supported: it verifies nothing.
import { pbkdf2, scrypt, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';

export type ArgonVariant = 'argon2id' | 'argon2i' | 'argon2d';

export type PasswordHashFormat =
  | { scheme: 'argon2'; variant: ArgonVariant }
  | { scheme: 'scrypt'; cost: number; blockSize: number; parallelism: number; salt: Buffer; hash: Buffer }
  | { scheme: 'bcrypt'; hash: string }
  | { scheme: 'pbkdf2'; digest: PbkdfDigest; iterations: number; salt: string; hash: Buffer };

export type ImportedHashFormat = Exclude<PasswordHashFormat, { scheme: 'argon2' }>;

type PbkdfDigest = 'sha1' | 'sha256' | 'sha512';
const PBKDF2_DIGEST_BYTES: Record<PbkdfDigest, number> = { sha1: 20, sha256: 32, sha512: 64 };

// Bounds that keep one verification to a few seconds and at most 1 GiB; beyond them a stored
// hash is refused rather than computed.
export const HASH_LIMITS = {
  maxLength: 1024,
  memoryBytes: 1024 ** 3,
  argon2TimeCost: 16,
  /** memory (KiB) x passes: 4 GiB of memory filled, libsodium's SENSITIVE profiles. */
  argon2Work: 4 * 1024 ** 2,
  argon2Parallelism: 16,
  scryptLogCost: 20,
  scryptBlockSize: 32,
  scryptParallelism: 16,
  /** 128 x N x r x p bytes mixed. */
  scryptWorkBytes: 4 * 1024 ** 3,
  bcryptCost: 16,
  pbkdf2Iterations: 10_000_000,
  minHashBytes: 16,
  maxHashBytes: 128,
  maxSaltBytes: 128,
} as const;

/** Whether a stored hash is one gatehouse can verify (a future importer checks rows with it). */
export function isSupportedPasswordHash(storedHash: string): boolean {
  return parsePasswordHash(storedHash) !== null;
}

/** The scheme and parameters of a stored hash, or null when it is malformed or out of bounds. */
export function parsePasswordHash(storedHash: string): PasswordHashFormat | null {
  if (typeof storedHash !== 'string' || storedHash.length > HASH_LIMITS.maxLength) return null;
  if (storedHash.startsWith('$argon2')) return parseArgon2(storedHash);
  if (storedHash.startsWith('$scrypt$')) return parseScrypt(storedHash);
  if (storedHash.startsWith('$2')) return parseBcrypt(storedHash);
  if (storedHash.startsWith('pbkdf2:')) return parseWerkzeugPbkdf2(storedHash);
  return null;
}

/** Verifies a password against a non-argon2 hash, comparing in constant time. */
export async function verifyImportedHash(format: ImportedHashFormat, password: string): Promise<boolean> {
  let expected: Buffer;
  let actual: Buffer;
  if (format.scheme === 'scrypt') {
    const { cost, blockSize, parallelism, salt, hash } = format;
    // OpenSSL needs 128·r·(N + p + 2) bytes; the bound on N and r was checked when parsing.
    const maxmem = 128 * blockSize * (cost + parallelism + 2) + 1024 * 1024;
    expected = hash;
    actual = await new Promise<Buffer>((resolve, reject) =>
      scrypt(password, salt, hash.length, { N: cost, r: blockSize, p: parallelism, maxmem }, (error, key) =>
        error ? reject(error) : resolve(key),
      ),
    );
  } else if (format.scheme === 'bcrypt') {
    expected = Buffer.from(format.hash);
    // The first 29 characters are the version, cost and salt: hashing with them reproduces the whole string.
    actual = Buffer.from(await bcrypt.hash(password, format.hash.slice(0, 29)));
  } else {
    const { digest, iterations, salt, hash } = format;
    expected = hash;
    actual = await new Promise<Buffer>((resolve, reject) =>
      pbkdf2(password, salt, iterations, hash.length, digest, (error, key) => (error ? reject(error) : resolve(key))),
    );
  }
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

const PHC_B64 = /^[A-Za-z0-9+/]+$/;
const DECIMAL = /^(0|[1-9][0-9]{0,9})$/;

/** PHC "B64": standard base64 without padding. */
function decodeB64(text: string): Buffer | null {
  if (!PHC_B64.test(text) || text.length % 4 === 1) return null;
  return Buffer.from(text, 'base64');
}

/** `name=value,...` with exactly the required names (plus optional ones), each once; values as written. */
function parseParameters(text: string, required: readonly string[], optional: readonly string[] = []): Map<string, string> | null {
  const values = new Map<string, string>();
  for (const pair of text.split(',')) {
    const separator = pair.indexOf('=');
    const name = pair.slice(0, separator);
    if (separator <= 0 || values.has(name) || !(required.includes(name) || optional.includes(name))) return null;
    values.set(name, pair.slice(separator + 1));
  }
  return required.every((name) => values.has(name)) ? values : null;
}

function decimal(value: string | undefined, min: number, max: number): number | null {
  if (value === undefined || !DECIMAL.test(value)) return null;
  const number = Number(value);
  return number >= min && number <= max ? number : null;
}

/** Salt and hash decoded from PHC B64, or null when either is missing or of an unusable length. */
function saltAndHash(saltText: string, hashText: string, minSaltBytes: number): { salt: Buffer; hash: Buffer } | null {
  const salt = decodeB64(saltText);
  const hash = decodeB64(hashText);
  if (!salt || salt.length < minSaltBytes || salt.length > HASH_LIMITS.maxSaltBytes) return null;
  if (!hash || hash.length < HASH_LIMITS.minHashBytes || hash.length > HASH_LIMITS.maxHashBytes) return null;
  return { salt, hash };
}

// $argon2id[$v=19]$m=<KiB>,t=<passes>,p=<lanes>[,data=<b64>]$<salt>$<hash>; argon2 itself checks the rest.
function parseArgon2(storedHash: string): PasswordHashFormat | null {
  const fields = storedHash.split('$');
  const variant = fields[1];
  if (variant !== 'argon2id' && variant !== 'argon2i' && variant !== 'argon2d') return null;
  // Without a version field the hash is version 1.0 (v=16), as in the reference implementation.
  if (fields.length !== 5 && !(fields.length === 6 && (fields[2] === 'v=16' || fields[2] === 'v=19'))) return null;
  const [parameters, salt, hash] = fields.slice(-3) as [string, string, string];
  const values = parseParameters(parameters, ['m', 't', 'p'], ['data']);
  if (!values) return null;
  const lanes = decimal(values.get('p'), 1, HASH_LIMITS.argon2Parallelism);
  const passes = decimal(values.get('t'), 1, HASH_LIMITS.argon2TimeCost);
  const memory = decimal(values.get('m'), 8 * (lanes ?? 1), HASH_LIMITS.memoryBytes / 1024);
  if (lanes === null || passes === null || memory === null || memory * passes > HASH_LIMITS.argon2Work) return null;
  const data = values.get('data');
  if (data !== undefined && decodeB64(data) === null) return null;
  // argon2 needs a salt of at least 8 bytes.
  return saltAndHash(salt, hash, 8) ? { scheme: 'argon2', variant } : null;
}

// $scrypt$ln=<log2 N>,r=<block size>,p=<parallelism>$<salt>$<hash>
function parseScrypt(storedHash: string): PasswordHashFormat | null {
  const fields = storedHash.split('$');
  if (fields.length !== 5 || fields[0] !== '' || fields[1] !== 'scrypt') return null;
  const values = parseParameters(fields[2] ?? '', ['ln', 'r', 'p']);
  if (!values) return null;
  const logCost = decimal(values.get('ln'), 1, HASH_LIMITS.scryptLogCost);
  const blockSize = decimal(values.get('r'), 1, HASH_LIMITS.scryptBlockSize);
  const parallelism = decimal(values.get('p'), 1, HASH_LIMITS.scryptParallelism);
  if (logCost === null || blockSize === null || parallelism === null) return null;
  // RFC 7914 §2 requires N < 2^(128·r/8).
  if (logCost >= 16 * blockSize) return null;
  const cost = 2 ** logCost;
  if (128 * cost * blockSize > HASH_LIMITS.memoryBytes || 128 * cost * blockSize * parallelism > HASH_LIMITS.scryptWorkBytes) return null;
  const bytes = saltAndHash(fields[3] ?? '', fields[4] ?? '', 1);
  return bytes && { scheme: 'scrypt', cost, blockSize, parallelism, ...bytes };
}

// $2b$<cost>$<22 salt chars><31 hash chars> in bcrypt's base64 alphabet; the last character of the
// salt carries 2 bits and that of the hash 4, so only some characters are canonical there.
const BCRYPT = /^\$2[aby]\$([0-9]{2})\$[./A-Za-z0-9]{21}[.Oeu][./A-Za-z0-9]{30}[.CGKOSWaeimquy26]$/;

function parseBcrypt(storedHash: string): PasswordHashFormat | null {
  const cost = Number(BCRYPT.exec(storedHash)?.[1]);
  // bcrypt's own minimum cost is 4; NaN (no match) fails both comparisons.
  if (!(cost >= 4 && cost <= HASH_LIMITS.bcryptCost)) return null;
  return { scheme: 'bcrypt', hash: storedHash };
}

// Werkzeug's generate_password_hash: pbkdf2:<digest>:<iterations>$<salt text>$<hex digest>.
const WERKZEUG_PBKDF2 = /^pbkdf2:(sha1|sha256|sha512):([0-9]+)$/;

function parseWerkzeugPbkdf2(storedHash: string): PasswordHashFormat | null {
  const fields = storedHash.split('$');
  if (fields.length !== 3) return null;
  const [method, salt, hex] = fields as [string, string, string];
  const match = WERKZEUG_PBKDF2.exec(method);
  const digest = match?.[1] as PbkdfDigest | undefined;
  const iterations = decimal(match?.[2], 1, HASH_LIMITS.pbkdf2Iterations);
  if (!digest || iterations === null || salt.length === 0 || Buffer.byteLength(salt) > HASH_LIMITS.maxSaltBytes) return null;
  if (hex.length !== 2 * PBKDF2_DIGEST_BYTES[digest] || !/^[0-9a-fA-F]+$/.test(hex)) return null;
  return { scheme: 'pbkdf2', digest, iterations, salt, hash: Buffer.from(hex, 'hex') };
}
