// Every setting gatehouse reads, in one table: environment name, default, one-line doc and parser.
// loadConfig() validates all of them once at boot and returns a frozen object that is passed in
// explicitly; nothing else reads process.env. The README's configuration table mirrors SETTINGS.

export type PasswordHashProfile = 'owasp' | 'test';

export interface Config {
  databaseUrl: string;
  databasePoolMax: number;
  host: string;
  port: number;
  logLevel: string;
  adminUsername: string | null;
  adminPassword: string | null;
  openSignup: boolean;
  rateLimitPerMinute: number;
  issuer: string;
  audience: string;
  accessTokenTtlSeconds: number;
  sessionTtlSeconds: number;
  signingKeyActivationSeconds: number;
  passwordHashProfile: PasswordHashProfile;
  loginEventRetentionDays: number;
  lastSeenIntervalSeconds: number;
  bodyLimitBytes: number;
  shutdownTimeoutSeconds: number;
}

type Parser<T> = (raw: string) => T;

interface Setting<K extends keyof Config> {
  env: string;
  key: K;
  default: string | null;
  doc: string;
  parse: Parser<Config[K]>;
}

class SettingError extends Error {}

const text: Parser<string> = (raw) => {
  if (raw.trim() === '') throw new SettingError('must not be empty');
  return raw;
};

const optionalText: Parser<string | null> = (raw) => (raw === '' ? null : raw);

function integer(min: number, max: number): Parser<number> {
  return (raw) => {
    if (!/^-?\d+$/.test(raw.trim())) throw new SettingError(`must be a whole number from ${min} to ${max}`);
    const value = Number(raw);
    if (value < min || value > max) throw new SettingError(`must be a whole number from ${min} to ${max}`);
    return value;
  };
}

const boolean: Parser<boolean> = (raw) => {
  const value = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw new SettingError('must be true or false');
};

function oneOf<T extends string>(...values: T[]): Parser<T> {
  return (raw) => {
    if (!(values as string[]).includes(raw)) throw new SettingError(`must be one of ${values.join(', ')}`);
    return raw as T;
  };
}

const databaseUrl: Parser<string> = (raw) => {
  if (raw.startsWith('sqlite:') && raw.length > 'sqlite:'.length) return raw;
  if (/^postgres(ql)?:\/\/.+/.test(raw)) {
    try {
      new URL(raw);
    } catch {
      throw new SettingError('is not a valid postgres:// URL');
    }
    return raw;
  }
  throw new SettingError('must be sqlite:PATH or postgres://USER@HOST:PORT/DATABASE');
};

const logLevel = oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent');

// The order here is the order of the README table.
export const SETTINGS: Setting<keyof Config>[] = [
  s('DATABASE_URL', 'databaseUrl', 'sqlite:./data/gatehouse.db', 'Database: `sqlite:PATH` (embedded) or `postgres://…`.', databaseUrl),
  s('DATABASE_POOL_MAX', 'databasePoolMax', '10', 'Most PostgreSQL connections per instance.', integer(1, 1000)),
  s('HOST', 'host', '127.0.0.1', 'Address to listen on (`0.0.0.0` for all interfaces).', text),
  s('PORT', 'port', '8080', 'TCP port to listen on.', integer(0, 65535)),
  s('GATEHOUSE_LOG_LEVEL', 'logLevel', 'info', 'pino log level: fatal, error, warn, info, debug, trace or silent.', logLevel),
  s(
    'GATEHOUSE_ADMIN_USERNAME',
    'adminUsername',
    null,
    'Username of the first admin, created when the database has no admin (default `admin`).',
    optionalText,
  ),
  s('GATEHOUSE_ADMIN_PASSWORD', 'adminPassword', null, 'Password of the first admin; unset: a random one is printed once.', optionalText),
  s('GATEHOUSE_OPEN_SIGNUP', 'openSignup', 'false', 'Let anonymous callers create (non-admin) accounts.', boolean),
  s(
    'GATEHOUSE_RATE_LIMIT_PER_MINUTE',
    'rateLimitPerMinute',
    '1200',
    'Requests per minute per client address; `0` turns the general limit off.',
    integer(0, 10_000_000),
  ),
  s('GATEHOUSE_ISSUER', 'issuer', 'gatehouse', '`iss` of access tokens.', text),
  s('GATEHOUSE_AUDIENCE', 'audience', 'gatehouse', '`aud` of access tokens.', text),
  s('GATEHOUSE_ACCESS_TOKEN_TTL_SECONDS', 'accessTokenTtlSeconds', '900', 'Lifetime of an access token.', integer(30, 86_400)),
  s(
    'GATEHOUSE_SESSION_TTL_SECONDS',
    'sessionTtlSeconds',
    '2592000',
    'Lifetime of a session (its refresh tokens), from sign-in.',
    integer(60, 31_536_000),
  ),
  s(
    'GATEHOUSE_PASSWORD_HASH_PROFILE',
    'passwordHashProfile',
    'owasp',
    '`owasp` (argon2id m=19 MiB, t=2, p=1) or `test` (cheap; loopback only).',
    oneOf<PasswordHashProfile>('owasp', 'test'),
  ),
  s(
    'GATEHOUSE_LOGIN_EVENT_RETENTION_DAYS',
    'loginEventRetentionDays',
    '90',
    'Login events older than this are deleted (hourly).',
    integer(1, 36_500),
  ),
  s(
    'GATEHOUSE_LAST_SEEN_INTERVAL_SECONDS',
    'lastSeenIntervalSeconds',
    '60',
    '`last_seen_at` is written at most this often per user.',
    integer(1, 86_400),
  ),
  s('GATEHOUSE_BODY_LIMIT_BYTES', 'bodyLimitBytes', '65536', 'Largest request body accepted (413 beyond).', integer(1024, 104_857_600)),
  s(
    'GATEHOUSE_SHUTDOWN_TIMEOUT_SECONDS',
    'shutdownTimeoutSeconds',
    '10',
    'On SIGTERM, how long in-flight requests may take before exit.',
    integer(1, 600),
  ),
];

function s<K extends keyof Config>(env: string, key: K, def: string | null, doc: string, parse: Parser<Config[K]>): Setting<K> {
  return { env, key, default: def, doc, parse };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

/** Reads and validates every setting; throws ConfigError naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<Config> = {}): Readonly<Config> {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const raw = env[setting.env];
    if (raw === undefined || (raw === '' && setting.default !== null)) {
      values[setting.key] = setting.default === null ? null : setting.parse(setting.default);
      continue;
    }
    try {
      values[setting.key] = setting.parse(raw);
    } catch (error) {
      if (!(error instanceof SettingError)) throw error;
      problems.push(`${setting.env}=${JSON.stringify(raw)} ${error.message}`);
    }
  }
  const config = { ...(values as unknown as Config), ...overrides };
  if (problems.length === 0 && config.passwordHashProfile === 'test' && !isLoopback(config.host)) {
    problems.push(`GATEHOUSE_PASSWORD_HASH_PROFILE=test is for tests only and refuses to serve on the non-loopback HOST=${config.host}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}
