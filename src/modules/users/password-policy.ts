// The contract's password policy (NIST SP 800-63B §3.1.1.2, ASVS 4.0.3 2.1.1/2.1.2/2.1.7):
// 12 to 128 characters counted as code points, no composition rules, not a common password
// (assets/common-passwords.txt, from SecLists), and not the username.
import { readFileSync } from 'node:fs';
import { AppError } from '../../http/errors.js';

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 128;

let commonPasswords: Set<string> | null = null;

function loadCommonPasswords(): Set<string> {
  if (!commonPasswords) {
    const file = new URL('../../../assets/common-passwords.txt', import.meta.url);
    commonPasswords = new Set(
      readFileSync(file, 'utf8')
        .split('\n')
        .map((line) => line.trim())
        .filter(Boolean),
    );
  }
  return commonPasswords;
}

export function commonPasswordCount(): number {
  return loadCommonPasswords().size;
}

/** Throws weak_password (422) naming the rule the password breaks. */
export function assertPasswordPolicy(password: string, username: string, field = 'password'): void {
  const length = [...password].length;
  let message: string | null = null;
  if (length < PASSWORD_MIN_LENGTH) message = `must be at least ${PASSWORD_MIN_LENGTH} characters`;
  else if (length > PASSWORD_MAX_LENGTH) message = `must be at most ${PASSWORD_MAX_LENGTH} characters`;
  else if (password.toLowerCase() === username.toLowerCase()) message = 'must not be the username';
  else if (loadCommonPasswords().has(password.toLowerCase())) message = 'is too common; choose another';
  if (message) {
    throw new AppError('weak_password', `The ${field} ${message}.`, { errors: [{ field, message }] });
  }
}
