// The public shape of a user (the contract's user representation): never a password or hash.
import { toIso } from '../../lib/time.js';
import { decodeRoles, type Role, type UserRow } from './users.repository.js';

export interface UserView {
  id: string;
  username: string;
  email: string;
  display_name: string | null;
  roles: Role[];
  status: 'active' | 'disabled';
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
  last_seen_at: string | null;
}

// Already RFC 3339 UTC with milliseconds, as nowIso() writes it (SQLite keeps the text, and
// PostgreSQL's timestamptz arrives in this form: database.ts). Only real dates match, so that Date
// would give each back unchanged: days 29 and 30 in every month but February, 31 in the seven long
// months; February 29 and anything else go through toIso. Parsing and re-printing four dates per
// user was about 7% of a 20-user page's busy CPU time (SQLite profile, bench/RESULTS.md). Days 29
// to 31 once took that slow path too: for three days a month, every date written that day did.
const CANONICAL_ISO =
  /^\d{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/;

function iso(value: string | Date): string;
function iso(value: string | Date | null): string | null;
function iso(value: string | Date | null): string | null {
  return typeof value === 'string' && CANONICAL_ISO.test(value) ? value : toIso(value);
}

// Rows are not changed once read, and the authentication cache hands the same row to many requests:
// each row's view is made once.
const views = new WeakMap<UserRow, UserView>();

export function toUserView(row: UserRow): UserView {
  let view = views.get(row);
  if (view === undefined) {
    view = makeUserView(row);
    views.set(row, view);
  }
  return view;
}

/** A new view every call: for a row seen once (an import's), where remembering it would only cost. */
export function makeUserView(row: UserRow): UserView {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    display_name: row.display_name,
    roles: decodeRoles(row.roles),
    status: row.status,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    last_login_at: iso(row.last_login_at),
    last_seen_at: iso(row.last_seen_at),
  };
}

export function isAdmin(row: UserRow): boolean {
  return decodeRoles(row.roles).includes('admin');
}

/** Who is calling: the signed-in user and how they proved it. */
export interface Caller {
  user: UserRow;
  method: 'basic' | 'bearer';
  /** The Bearer session, or null for Basic (which has no session). */
  sessionId: string | null;
}

/** The operator at the command line: acts as an admin that is no account. */
export function operatorCaller(): Caller {
  return {
    user: {
      id: 'operator',
      username: 'operator',
      email: 'operator@localhost',
      display_name: null,
      roles: 'admin',
      status: 'active',
      password_hash: '',
      created_at: new Date(0).toISOString(),
      updated_at: new Date(0).toISOString(),
      last_login_at: null,
      last_seen_at: null,
    },
    method: 'basic',
    sessionId: null,
  };
}
