// The composition root below HTTP: database, repositories, hasher, token issuer and services, wired
// once from the config. serve, the CLI and the tests all build the same graph here.
import { availableParallelism } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { createDatabase, type DatabaseHandle } from './db/database.js';
import { migrateToLatest } from './db/migrate.js';
import { createMetrics, type Metrics } from './http/metrics.js';
import { createRedis, subscribeToChannel } from './lib/redis.js';
import { createEventRecorder, type EventRecorder } from './modules/events/events.js';
import { createEventsRepository, type EventsRepository } from './modules/events/events.repository.js';
import { createRelay, type Relay } from './modules/events/relay.js';
import { createIdempotency, type Idempotency } from './modules/idempotency/idempotency.js';
import { createIdempotencyRepository } from './modules/idempotency/idempotency.repository.js';
import { createImportsRepository } from './modules/imports/imports.repository.js';
import { createImportsService, type ImportsService } from './modules/imports/imports.service.js';
import { createImportWorker, type ImportWorker } from './modules/imports/imports.worker.js';
import { createWorkQueue } from './modules/imports/work-queue.js';
import { createLoginsRepository, type LoginsRepository } from './modules/logins/logins.repository.js';
import { createBasicAuthCache } from './modules/sessions/basic-cache.js';
import { createCallerCache } from './modules/sessions/caller-cache.js';
import { createHashPool } from './modules/sessions/hash-pool.js';
import { createPasswordHasher, type PasswordHasher } from './modules/sessions/passwords.js';
import { createSessionsRepository } from './modules/sessions/sessions.repository.js';
import { createSessionsService, type SessionsService } from './modules/sessions/sessions.service.js';
import { createSignInThrottle, type SignInThrottle } from './modules/sessions/throttle.js';
import { createTokenIssuer, type TokenIssuer } from './modules/sessions/tokens.js';
import { createUserListCache, type UserListCache } from './modules/users/list-cache.js';
import { createUsersRepository, type UsersRepository } from './modules/users/users.repository.js';
import { createUsersService, type UsersService } from './modules/users/users.service.js';

/** The announcement that lists changed with no one user to name (an import's chunk). */
const LISTS_CHANGED = 'lists';

export interface Services {
  config: Readonly<Config>;
  database: DatabaseHandle;
  metrics: Metrics;
  hasher: PasswordHasher;
  tokens: TokenIssuer;
  throttle: SignInThrottle;
  /** The shared Redis connection, when REDIS_URL is set. */
  redis: Redis | null;
  eventsRepository: EventsRepository;
  events: EventRecorder;
  /** The outbox relay, when AMQP_URL is set; `serve` or `gatehouse relay` starts it. */
  relay: Relay | null;
  imports: ImportsService;
  /** The import worker; `serve` starts it (GATEHOUSE_IMPORT_WORKER_ENABLED), `gatehouse import` drains with it. */
  importWorker: ImportWorker;
  /** Set on SIGTERM: /readyz answers 503 while in-flight work drains. */
  lifecycle: { draining: boolean };
  usersRepository: UsersRepository;
  /** Idempotency-Key records of POST /v1/users and POST /v1/imports. */
  idempotency: Idempotency;
  loginsRepository: LoginsRepository;
  users: UsersService;
  /** Answers to GET /v1/users reused for GATEHOUSE_USER_LIST_CACHE_MS (list-cache.ts). */
  userPages: UserListCache;
  sessions: SessionsService;
  close(): Promise<void>;
}

/** Password hashes computed at once when GATEHOUSE_HASH_CONCURRENCY is 0: one a core. */
export function defaultHashConcurrency(cores: number): number {
  return cores;
}

/**
 * How many hashes the line hands to libuv's thread pool at once. When the pool has exactly one
 * thread for each hash computed at once (bin/gatehouse.cjs sizes it so), one more: it waits in
 * libuv's own queue, and the thread that ends a hash starts it at once. Handed over by the event
 * loop instead, the next hash started only once the event loop got to it, and under sign-in load it
 * is often busy with the last one's answer: with one hash a core, a core sat idle 3–7% of the time.
 * With one hash more than cores, each on a thread of its own, the hashes took turns on the cores
 * and each cost 4–9% more CPU time than alone (RESULTS, thirteenth, fifteenth and seventeenth
 * rounds). With a pool of any other size (UV_THREADPOOL_SIZE set, or a process bin/gatehouse.cjs did
 * not start), an extra hash could run beside the others, so none is handed ahead.
 */
export function hashesHandedToPool(atOnce: number, poolThreads: number | null): number {
  return poolThreads === atOnce ? atOnce + 1 : atOnce;
}

export async function createServices(
  config: Readonly<Config>,
  logger: Logger,
  options: { migrate?: boolean; threadPoolSize?: number | null } = {},
): Promise<Services> {
  const metrics = createMetrics();
  const database = createDatabase(config, {
    onPoolError: (error, server) => logger.error({ err: error, server }, 'database pool error'),
    onRead: metrics.countRead,
    onReplicaStateChange: (state, reason) =>
      state.up
        ? logger.info({ replica: state.name }, `read replica receives reads again: ${reason}`)
        : logger.warn({ replica: state.name, lag_seconds: state.lagSeconds }, `read replica gets no reads: ${reason}`),
  });
  if (database.replicas) metrics.watchReplicas(database.replicas.states);
  const redis = config.redisUrl ? createRedis(config.redisUrl, (error) => logger.warn({ err: error }, 'redis connection error')) : null;
  try {
    if (options.migrate !== false) {
      const applied = await migrateToLatest(database.db);
      if (applied.length > 0) logger.info({ migrations: applied }, 'applied database migrations');
    }
    const atOnce = config.hashConcurrency || defaultHashConcurrency(availableParallelism());
    const handed = hashesHandedToPool(atOnce, options.threadPoolSize ?? null);
    const queueMax = config.hashQueueMax || atOnce * 64;
    const pool = createHashPool(
      handed,
      queueMax,
      metrics.countHashRejection,
      config.hashMaxWaitMilliseconds,
      config.hashShedDelayMilliseconds,
    );
    metrics.watchHashPool(pool);
    logger.info(
      { hashes_at_once: atOnce, handed_to_thread_pool: handed, queue_max: queueMax },
      'password hashing: at most this many at once (GATEHOUSE_HASH_CONCURRENCY)',
    );
    const hasher = await createPasswordHasher(config.passwordHashProfile, {
      pool,
      observe: metrics.observeHash,
      countVerification: metrics.countVerification,
    });
    const throttle = createSignInThrottle({
      redis,
      keyPrefix: config.redisKeyPrefix,
      logger,
      onSlowed: () => metrics.countThrottled('slowed'),
      limits: {
        failuresPerUsernameAndIp: config.signInFailuresPerUsernameAndIp,
        failuresPerUsernameAndIpWindowSeconds: config.signInFailureWindowSeconds,
        failuresPerIpPerDay: config.signInFailuresPerIpPerDay,
        failuresPerUsernamePerHour: config.signInFailuresPerUsernamePerHour,
        slowdownMilliseconds: config.signInSlowdownMilliseconds,
      },
    });
    const tokens = createTokenIssuer(database.db, config);
    await tokens.init();
    const eventsRepository = createEventsRepository(database.db, database.dialect);
    const relay = config.amqpUrl
      ? createRelay({
          db: database.db,
          dialect: database.dialect,
          events: eventsRepository,
          amqpUrl: config.amqpUrl,
          exchange: config.amqpExchange,
          source: config.eventSource,
          logger,
          onPublished: metrics.countPublished,
          onPublishFailed: metrics.countPublishFailure,
        })
      : null;
    metrics.watchOutbox(() => eventsRepository.pendingStats());
    const events = createEventRecorder(eventsRepository, () => relay?.wake());
    const usersRepository = createUsersRepository(database.db, database.dialect);
    const sessionsRepository = createSessionsRepository(database.db);
    const loginsRepository = createLoginsRepository(database.db);
    const workQueue = config.amqpUrl
      ? createWorkQueue(config.amqpUrl, config.amqpImportQueue, (error) => logger.warn({ err: error }, 'import work queue error'))
      : null;
    // A change to a user is announced to the other instances, which forget their cached copies at
    // once; if an announcement is lost (Redis away), the entry still expires within the TTL. The
    // message is the user's id, or LISTS_CHANGED when only the lists changed (an import's chunk).
    const callerChannel = `${config.redisKeyPrefix}caller-changes`;
    const announce = (message: string) => {
      redis?.publish(callerChannel, message).catch(() => {});
    };
    const userPages = createUserListCache(config.userListCacheMilliseconds);
    const imports = createImportsService({
      db: database.db,
      dialect: database.dialect,
      imports: createImportsRepository(database.db),
      users: usersRepository,
      hasher,
      events,
      leaseSeconds: config.importLeaseSeconds,
      hashLanes: handed,
      enqueue: workQueue ? (jobId, seq) => workQueue.publish(jobId, seq) : null,
      onUsersCreated: () => {
        userPages.clear();
        announce(LISTS_CHANGED);
      },
    });
    const importWorker = createImportWorker({ imports, workQueue, logger, concurrency: config.importConcurrency });
    const callerCache = createCallerCache(config.authCacheMilliseconds, (userId) => {
      userPages.clear();
      announce(userId);
    });
    const callerSubscriber =
      config.redisUrl && (config.authCacheMilliseconds > 0 || config.userListCacheMilliseconds > 0)
        ? subscribeToChannel(config.redisUrl, callerChannel, {
            onMessage: (message) => {
              userPages.clear();
              if (message !== LISTS_CHANGED) callerCache.forget(message);
            },
            // Announcements made while unsubscribed are lost: forget everything.
            onSubscribed: () => {
              userPages.clear();
              callerCache.clear();
            },
            onError: (error) => logger.warn({ err: error }, 'redis subscriber connection error'),
          })
        : null;
    const common = {
      db: database.db,
      dialect: database.dialect,
      users: usersRepository,
      sessions: sessionsRepository,
      logins: loginsRepository,
      hasher,
      events,
      callerCache,
    };
    return {
      config,
      database,
      metrics,
      hasher,
      tokens,
      throttle,
      redis,
      eventsRepository,
      events,
      relay,
      lifecycle: { draining: false },
      usersRepository,
      loginsRepository,
      idempotency: createIdempotency(createIdempotencyRepository(database.db)),
      users: createUsersService({ ...common, dialect: database.dialect, config }),
      userPages,
      imports,
      importWorker,
      sessions: createSessionsService({
        ...common,
        config,
        tokens,
        throttle,
        basicCache: createBasicAuthCache(config.basicAuthCacheSeconds),
        onThrottled: () => metrics.countThrottled('blocked'),
        onBackgroundError: (error) => logger.warn({ err: error }, 'background write failed'),
      }),
      async close() {
        await importWorker.stop();
        await relay?.stop();
        await database.destroy();
        await callerSubscriber?.close();
        if (redis) await redis.quit().catch(() => redis.disconnect());
      },
    };
  } catch (error) {
    await database.destroy().catch(() => {});
    redis?.disconnect();
    throw error;
  }
}
