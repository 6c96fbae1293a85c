// The first admin (API.md "Start-up"): on a database with no admin, create one from
// GATEHOUSE_ADMIN_USERNAME / GATEHOUSE_ADMIN_PASSWORD, or `admin` with a random password that is
// printed once. There is never a fixed default password.
import { uniqueViolationColumn } from './db/errors.js';
import { randomToken, uuidv7 } from './lib/ids.js';
import { nowIso } from './lib/time.js';
import { assertPasswordPolicy } from './modules/users/password-policy.js';
import { encodeRoles } from './modules/users/users.repository.js';
import { normalizeUsername } from './modules/users/users.service.js';
import { toUserView } from './modules/users/users.view.js';
import type { Services } from './services.js';

export interface BootstrapResult {
  username: string;
  /** Set only when the password was generated and must be shown to the operator. */
  generatedPassword: string | null;
}

export async function ensureFirstAdmin(services: Services): Promise<BootstrapResult | null> {
  const { config, usersRepository, hasher } = services;
  if (await usersRepository.hasAdmin()) return null;
  const username = normalizeUsername(config.adminUsername ?? 'admin');
  const generatedPassword = config.adminPassword ? null : randomToken(18);
  const password = config.adminPassword ?? (generatedPassword as string);
  assertPasswordPolicy(password, username, 'GATEHOUSE_ADMIN_PASSWORD');
  const now = nowIso();
  const row = {
    id: uuidv7(),
    username,
    email: `${username}@localhost`,
    display_name: 'Administrator',
    roles: encodeRoles(['admin', 'user']),
    status: 'active' as const,
    password_hash: await hasher.hash(password),
    created_at: now,
    updated_at: now,
    last_login_at: null,
    last_seen_at: null,
  };
  try {
    await services.database.db.transaction().execute(async (trx) => {
      await usersRepository.insert(row, trx);
      await services.events.record(trx, 'user.created', row.id, { user: toUserView(row) });
    });
  } catch (error) {
    // Another instance starting at the same moment created it first: its password is the one.
    if (uniqueViolationColumn(error)) return null;
    throw error;
  }
  return { username, generatedPassword };
}
