// Real password hashes in the formats gatehouse imports, made the way the systems that wrote them
// do: Werkzeug's generate_password_hash, bcrypt (bcryptjs) and scrypt PHC strings (node:crypto).
import { pbkdf2Sync, randomBytes, scryptSync } from 'node:crypto';
import bcrypt from 'bcryptjs';

/** Werkzeug: PBKDF2-HMAC-SHA256 over the UTF-8 password with the salt as UTF-8 text, as hex. */
export function werkzeugHash(password: string, iterations = 1_000, salt = randomBytes(12).toString('base64url').slice(0, 16)): string {
  return `pbkdf2:sha256:${iterations}$${salt}$${pbkdf2Sync(password, salt, iterations, 32, 'sha256').toString('hex')}`;
}

/** bcrypt at cost 4 with the given version prefix. */
export function bcryptHash(password: string, version: '2a' | '2b' | '2y' = '2b'): string {
  return bcrypt.hashSync(password, `$${version}$04$${bcrypt.genSaltSync(4).slice(7)}`);
}

const b64 = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '');

/** scrypt PHC string `$scrypt$ln=,r=,p=$salt$hash` (PHC B64: base64 without padding). */
export function scryptHash(password: string, logCost = 10, blockSize = 8, parallelism = 1): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32, { N: 2 ** logCost, r: blockSize, p: parallelism });
  return `$scrypt$ln=${logCost},r=${blockSize},p=${parallelism}$${b64(salt)}$${b64(hash)}`;
}
