// The command's exit codes, stable so that scripts can branch on them, and the errors that carry
// one. Every command's --help ends with EXIT_HELP, so a new code is documented in one place.
import type { ErrorCode } from '../http/errors.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, conflict: 4, unavailable: 5 } as const;

export const EXIT_HELP = `Exit codes:
  0  done
  1  failed: a value was refused (a weak password, an invalid email), an import row failed, an unexpected error
  2  wrong usage: an unknown command or option, a missing argument, a setting the command needs is unset
  3  not found: no user of that name, or no such FILE
  4  conflict: the username or email is taken, or the change would leave no active admin
  5  unavailable: the database cannot be reached or is overloaded; the same command may work later`;

/** The exit code of a service error, by its problem code; any other is EXIT.failed. */
export const EXIT_BY_PROBLEM: Partial<Record<ErrorCode, number>> = {
  not_found: EXIT.notFound,
  username_taken: EXIT.conflict,
  email_taken: EXIT.conflict,
  last_admin: EXIT.conflict,
  unavailable: EXIT.unavailable,
  overloaded: EXIT.unavailable,
};

/** Wrong usage (exit 2); `command` names the command whose --help the message points to. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command = '',
  ) {
    super(message);
  }
}

/** An expected failure with its own exit code (not found, unavailable). */
export class CommandFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}
