// Every setting gatehouse reads, in one table: environment name, default, one-line doc and parser.
// loadConfig() validates all of them once at boot and returns a frozen object that is passed in
// explicitly; nothing else reads process.env. The README's configuration table mirrors SETTINGS.

export type PasswordHashProfile = 'owasp' | 'test';

export interface Config {
  databaseUrl: string;
  databasePoolMax: number;
  databaseReplicaUrls: string[];
  databaseReplicaMaxLagSeconds: number;
  databaseConnectTimeoutMs: number;
  databaseStatementTimeoutMs: number;
  databaseIdleTimeoutMs: number;
  databasePreparedStatements: boolean;
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
  shutdownDelaySeconds: number;
  redisUrl: string | null;
  redisKeyPrefix: string;
  trustProxy: string | null;
  corsOrigins: string[];
  signInRateLimitPerMinute: number;
  signInFailuresPerUsernameAndIp: number;
  signInFailureWindowSeconds: number;
  signInFailuresPerIpPerDay: number;
  signInFailuresPerUsernamePerHour: number;
  signInSlowdownMilliseconds: number;
  hashConcurrency: number;
  hashQueueMax: number;
  hashMaxWaitMilliseconds: number;
  hashShedDelayMilliseconds: number;
  hashNice: number;
  basicAuthCacheSeconds: number;
  authCacheMilliseconds: number;
  userListCacheMilliseconds: number;
  jsonMaxDepth: number;
  amqpUrl: string | null;
  amqpExchange: string;
  eventSource: string;
  eventRetentionDays: number;
  relayEnabled: boolean;
  amqpImportQueue: string;
  importLeaseSeconds: number;
  importWorkerEnabled: boolean;
  importConcurrency: number;
  importMaxBytes: number;
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

const redisUrl: Parser<string | null> = (raw) => {
  if (raw === '') return null;
  if (!/^rediss?:\/\/.+/.test(raw)) throw new SettingError('must be redis://HOST:PORT[/DB] or rediss://…');
  return raw;
};

const amqpUrl: Parser<string | null> = (raw) => {
  if (raw === '') return null;
  if (!/^amqps?:\/\/.+/.test(raw)) throw new SettingError('must be amqp://USER:PASSWORD@HOST:PORT[/VHOST] or amqps://…');
  return raw;
};

const list: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

const replicaUrls: Parser<string[]> = (raw) => {
  const values = list(raw);
  for (const value of values) {
    if (!value.startsWith('postgres')) throw new SettingError('lists postgres:// URLs of read replicas');
    databaseUrl(value);
  }
  return values;
};

const origins: Parser<string[]> = (raw) => {
  const values = list(raw);
  for (const value of values) {
    if (value === '*' || value === 'null' || !/^https?:\/\/[^/\s]+$/.test(value)) {
      throw new SettingError(`lists exact origins such as https://app.example.com; ${JSON.stringify(value)} is not one`);
    }
  }
  return values;
};

const logLevel = oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent');

// The order here is the order of the README table. Typed as a record over Config's keys, so a
// setting that is declared in Config but missing here does not compile.
const DEFINITIONS: { [K in keyof Config]: Setting<K> } = {
  databaseUrl: s(
    'DATABASE_URL',
    'databaseUrl',
    'sqlite:./data/gatehouse.db',
    'Database: `sqlite:PATH` (embedded) or `postgres://…`.',
    databaseUrl,
  ),
  databasePoolMax: s('DATABASE_POOL_MAX', 'databasePoolMax', '10', 'Most PostgreSQL connections per instance.', integer(1, 1000)),
  databaseReplicaUrls: s(
    'DATABASE_REPLICA_URLS',
    'databaseReplicaUrls',
    '',
    'PostgreSQL read replicas, comma-separated `postgres://…` URLs: reads that may lag go to a healthy one.',
    replicaUrls,
  ),
  databaseReplicaMaxLagSeconds: s(
    'DATABASE_REPLICA_MAX_LAG_SECONDS',
    'databaseReplicaMaxLagSeconds',
    '5',
    'A replica further behind the primary than this gets no reads until it catches up.',
    integer(1, 3600),
  ),
  databaseConnectTimeoutMs: s(
    'DATABASE_CONNECT_TIMEOUT_MS',
    'databaseConnectTimeoutMs',
    '1000',
    'Longest wait for a PostgreSQL connection (new or from the pool) before the request gets 503.',
    integer(100, 60_000),
  ),
  databaseStatementTimeoutMs: s(
    'DATABASE_STATEMENT_TIMEOUT_MS',
    'databaseStatementTimeoutMs',
    '10000',
    'PostgreSQL cancels a statement that runs longer (server side; the client gives up 1 s later).',
    integer(100, 3_600_000),
  ),
  databaseIdleTimeoutMs: s(
    'DATABASE_IDLE_TIMEOUT_MS',
    'databaseIdleTimeoutMs',
    '30000',
    'An idle pooled PostgreSQL connection is closed after this long.',
    integer(1000, 3_600_000),
  ),
  databasePreparedStatements: s(
    'DATABASE_PREPARED_STATEMENTS',
    'databasePreparedStatements',
    'true',
    "PostgreSQL: send the sign-in's statements as named prepared statements. Set `false` behind a pooler that cannot keep them (PgBouncer in transaction mode before 1.21, or with `max_prepared_statements = 0`).",
    boolean,
  ),
  host: s('HOST', 'host', '127.0.0.1', 'Address to listen on (`0.0.0.0` for all interfaces).', text),
  port: s('PORT', 'port', '8080', 'TCP port to listen on.', integer(0, 65535)),
  logLevel: s('GATEHOUSE_LOG_LEVEL', 'logLevel', 'info', 'pino log level: fatal, error, warn, info, debug, trace or silent.', logLevel),
  adminUsername: s(
    'GATEHOUSE_ADMIN_USERNAME',
    'adminUsername',
    null,
    'Username of the first admin, created when the database has no admin (default `admin`).',
    optionalText,
  ),
  adminPassword: s(
    'GATEHOUSE_ADMIN_PASSWORD',
    'adminPassword',
    null,
    'Password of the first admin; unset: a random one is printed once.',
    optionalText,
  ),
  openSignup: s('GATEHOUSE_OPEN_SIGNUP', 'openSignup', 'false', 'Let anonymous callers create (non-admin) accounts.', boolean),
  rateLimitPerMinute: s(
    'GATEHOUSE_RATE_LIMIT_PER_MINUTE',
    'rateLimitPerMinute',
    '1200',
    'Requests per minute per client address; `0` turns the general limit off.',
    integer(0, 10_000_000),
  ),
  issuer: s('GATEHOUSE_ISSUER', 'issuer', 'gatehouse', '`iss` of access tokens.', text),
  audience: s('GATEHOUSE_AUDIENCE', 'audience', 'gatehouse', '`aud` of access tokens.', text),
  accessTokenTtlSeconds: s(
    'GATEHOUSE_ACCESS_TOKEN_TTL_SECONDS',
    'accessTokenTtlSeconds',
    '900',
    'Lifetime of an access token.',
    integer(30, 86_400),
  ),
  sessionTtlSeconds: s(
    'GATEHOUSE_SESSION_TTL_SECONDS',
    'sessionTtlSeconds',
    '2592000',
    'Lifetime of a session (its refresh tokens), from sign-in.',
    integer(60, 31_536_000),
  ),
  signingKeyActivationSeconds: s(
    'GATEHOUSE_SIGNING_KEY_ACTIVATION_SECONDS',
    'signingKeyActivationSeconds',
    '90',
    'A rotated-in signing key signs only after this long (every instance has loaded it by then).',
    integer(0, 86_400),
  ),
  passwordHashProfile: s(
    'GATEHOUSE_PASSWORD_HASH_PROFILE',
    'passwordHashProfile',
    'owasp',
    '`owasp` (argon2id m=19 MiB, t=2, p=1) or `test` (cheap; loopback only).',
    oneOf<PasswordHashProfile>('owasp', 'test'),
  ),
  loginEventRetentionDays: s(
    'GATEHOUSE_LOGIN_EVENT_RETENTION_DAYS',
    'loginEventRetentionDays',
    '90',
    'Login events older than this are deleted (hourly).',
    integer(1, 36_500),
  ),
  lastSeenIntervalSeconds: s(
    'GATEHOUSE_LAST_SEEN_INTERVAL_SECONDS',
    'lastSeenIntervalSeconds',
    '60',
    '`last_seen_at` is written at most this often per user.',
    integer(1, 86_400),
  ),
  bodyLimitBytes: s(
    'GATEHOUSE_BODY_LIMIT_BYTES',
    'bodyLimitBytes',
    '65536',
    'Largest request body accepted (413 beyond).',
    integer(1024, 104_857_600),
  ),
  shutdownTimeoutSeconds: s(
    'GATEHOUSE_SHUTDOWN_TIMEOUT_SECONDS',
    'shutdownTimeoutSeconds',
    '10',
    'On SIGTERM, how long in-flight requests may take before exit.',
    integer(1, 600),
  ),
  shutdownDelaySeconds: s(
    'GATEHOUSE_SHUTDOWN_DELAY_SECONDS',
    'shutdownDelaySeconds',
    '0',
    'On SIGTERM, keep serving this long with /readyz answering 503, so that load balancers stop sending first.',
    integer(0, 300),
  ),
  redisUrl: s(
    'REDIS_URL',
    'redisUrl',
    null,
    'Redis for sign-in throttling and rate limits shared by every instance; unset: per instance.',
    redisUrl,
  ),
  redisKeyPrefix: s('REDIS_KEY_PREFIX', 'redisKeyPrefix', 'gatehouse:', 'Prefix of every Redis key gatehouse writes.', text),
  trustProxy: s(
    'TRUST_PROXY',
    'trustProxy',
    null,
    'Proxies (addresses or CIDRs, comma-separated) whose `X-Forwarded-For` is believed.',
    optionalText,
  ),
  corsOrigins: s(
    'GATEHOUSE_CORS_ORIGINS',
    'corsOrigins',
    '',
    'Browser origins allowed to call the API (exact, comma-separated); empty: none.',
    origins,
  ),
  signInRateLimitPerMinute: s(
    'GATEHOUSE_SIGNIN_RATE_LIMIT_PER_MINUTE',
    'signInRateLimitPerMinute',
    '30',
    'Sign-in and anonymous sign-up requests per minute per client address.',
    integer(1, 10_000_000),
  ),
  signInFailuresPerUsernameAndIp: s(
    'GATEHOUSE_SIGNIN_FAILURES_PER_USERNAME_IP',
    'signInFailuresPerUsernameAndIp',
    '10',
    'Failed sign-ins per (username, address) in a window before 429.',
    integer(1, 1_000_000),
  ),
  signInFailureWindowSeconds: s(
    'GATEHOUSE_SIGNIN_FAILURE_WINDOW_SECONDS',
    'signInFailureWindowSeconds',
    '3600',
    'That window, and how long the block lasts.',
    integer(1, 86_400 * 30),
  ),
  signInFailuresPerIpPerDay: s(
    'GATEHOUSE_SIGNIN_FAILURES_PER_IP_PER_DAY',
    'signInFailuresPerIpPerDay',
    '100',
    'Failed sign-ins per address per day before 429.',
    integer(1, 100_000_000),
  ),
  signInFailuresPerUsernamePerHour: s(
    'GATEHOUSE_SIGNIN_FAILURES_PER_USERNAME_PER_HOUR',
    'signInFailuresPerUsernamePerHour',
    '100',
    'Failed sign-ins per username (all addresses) per hour before each attempt is slowed down.',
    integer(1, 100_000_000),
  ),
  signInSlowdownMilliseconds: s(
    'GATEHOUSE_SIGNIN_SLOWDOWN_MS',
    'signInSlowdownMilliseconds',
    '1000',
    'The added wait on a slowed-down username.',
    integer(0, 60_000),
  ),
  hashConcurrency: s(
    'GATEHOUSE_HASH_CONCURRENCY',
    'hashConcurrency',
    '0',
    "Password hashes computed at once; `0`: the number of cores. `bin/gatehouse.cjs` gives libuv's thread pool that many threads and `serve` hands it one hash more, which starts as soon as a thread is free.",
    integer(0, 1024),
  ),
  hashQueueMax: s(
    'GATEHOUSE_HASH_QUEUE_MAX',
    'hashQueueMax',
    '0',
    'Hashes that may wait at most; beyond, 503 overloaded. `0`: 64 per concurrent hash.',
    integer(0, 100_000),
  ),
  hashMaxWaitMilliseconds: s(
    'GATEHOUSE_HASH_MAX_WAIT_MS',
    'hashMaxWaitMilliseconds',
    '300',
    'A hash waits in line only if it can expect to start within this time (measured hash time × place in line ÷ concurrent hashes); otherwise 503 overloaded at once.',
    integer(1, 60_000),
  ),
  hashShedDelayMilliseconds: s(
    'GATEHOUSE_HASH_SHED_DELAY_MS',
    'hashShedDelayMilliseconds',
    '300',
    'How long a request refused for want of a hash slot waits before its 503 (as long as an admitted one may wait in line), so that clients retrying at once cannot turn the refusals into the load.',
    integer(0, 5_000),
  ),
  hashNice: s(
    'GATEHOUSE_HASH_NICE',
    'hashNice',
    '10',
    "The nice value `serve` gives node's thread pool, where passwords are hashed, so that requests needing no hash are scheduled first while sign-ins keep every core busy; `0`: the event loop's priority. Linux, when started by `bin/gatehouse.cjs`.",
    integer(0, 19),
  ),
  basicAuthCacheSeconds: s(
    'GATEHOUSE_BASIC_AUTH_CACHE_SECONDS',
    'basicAuthCacheSeconds',
    '30',
    'How long a verified Basic credential is remembered in memory; `0`: never.',
    integer(0, 3600),
  ),
  authCacheMilliseconds: s(
    'GATEHOUSE_AUTH_CACHE_MS',
    'authCacheMilliseconds',
    '500',
    'How long an instance reuses the session and user it read to authenticate a caller; a change made elsewhere is seen within this time (with Redis, at once). `0`: read them on every request.',
    integer(0, 1000),
  ),
  userListCacheMilliseconds: s(
    'GATEHOUSE_USER_LIST_CACHE_MS',
    'userListCacheMilliseconds',
    '500',
    'How long an instance reuses an answer to `GET /v1/users` for the same query; a change through this instance is listed at once, one made elsewhere within this time (with Redis, at once). `0`: read every time.',
    integer(0, 1000),
  ),
  jsonMaxDepth: s(
    'GATEHOUSE_JSON_MAX_DEPTH',
    'jsonMaxDepth',
    '20',
    'Deepest nesting accepted in a JSON body (400 beyond).',
    integer(2, 1000),
  ),
  amqpUrl: s(
    'AMQP_URL',
    'amqpUrl',
    null,
    'RabbitMQ: events are relayed there; unset: events are only in the outbox and the feed.',
    amqpUrl,
  ),
  amqpExchange: s(
    'AMQP_EXCHANGE',
    'amqpExchange',
    'gatehouse.events',
    'The durable topic exchange events are published to (routing key = type).',
    text,
  ),
  eventSource: s('GATEHOUSE_EVENT_SOURCE', 'eventSource', '/gatehouse', 'The CloudEvents `source` of every event.', text),
  eventRetentionDays: s(
    'GATEHOUSE_EVENT_RETENTION_DAYS',
    'eventRetentionDays',
    '7',
    'Published events (all events, without a broker) older than this are deleted (hourly).',
    integer(1, 36_500),
  ),
  relayEnabled: s(
    'GATEHOUSE_RELAY_ENABLED',
    'relayEnabled',
    'true',
    'Run the event relay inside `serve` (with AMQP_URL); `false` when `gatehouse relay` runs apart.',
    boolean,
  ),
  amqpImportQueue: s(
    'AMQP_IMPORT_QUEUE',
    'amqpImportQueue',
    'gatehouse.imports',
    'The durable work queue of import chunks (with AMQP_URL).',
    text,
  ),
  importLeaseSeconds: s(
    'GATEHOUSE_IMPORT_LEASE_SECONDS',
    'importLeaseSeconds',
    '60',
    'A chunk whose worker has not finished it in this long is taken by another worker.',
    integer(1, 86_400),
  ),
  importWorkerEnabled: s('GATEHOUSE_IMPORT_WORKER_ENABLED', 'importWorkerEnabled', 'true', 'Run an import worker inside `serve`.', boolean),
  importConcurrency: s(
    'GATEHOUSE_IMPORT_CONCURRENCY',
    'importConcurrency',
    '4',
    'Import chunks each worker processes at once.',
    integer(1, 64),
  ),
  importMaxBytes: s(
    'GATEHOUSE_IMPORT_MAX_BYTES',
    'importMaxBytes',
    '1073741824',
    'Largest import upload accepted (413 beyond).',
    integer(1024, 1_099_511_627_776),
  ),
};

export const SETTINGS: Setting<keyof Config>[] = Object.values(DEFINITIONS);

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
  if (problems.length === 0 && config.databaseReplicaUrls.length > 0 && !config.databaseUrl.startsWith('postgres')) {
    problems.push('DATABASE_REPLICA_URLS needs a PostgreSQL DATABASE_URL (the embedded SQLite database has no replicas)');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}
