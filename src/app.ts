// buildApp(services): the whole HTTP wiring in one readable place, in order: Fastify itself and its
// validators, app-wide hooks (request ids, headers, errors, metrics, rate limit, auth), the OpenAPI
// document, then each module's routes. Tests build exactly this app.

import { randomUUID } from 'node:crypto';
import formbody from '@fastify/formbody';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { registerAdminRoutes } from './admin/admin.routes.js';
import { registerAuth } from './http/auth.js';
import { publicCachePolicies } from './http/caching.js';
import { registerReadConsistency } from './http/consistency.js';
import { AppError, errorHandler } from './http/errors.js';
import { DeferredChildLogger } from './http/logger.js';
import { registerRequestMetrics } from './http/metrics.js';
import { registerNotFound } from './http/not-found.js';
import { ProblemSchema } from './http/schemas.js';
import { registerCors, registerJsonParser, registerResponseHeaders } from './http/security.js';
import { registerCompatRoutes } from './modules/compat/compat.routes.js';
import { registerEventsRoutes } from './modules/events/events.routes.js';
import { registerImportsRoutes } from './modules/imports/imports.routes.js';
import { registerOpsRoutes } from './modules/ops/ops.routes.js';
import { registerSessionsRoutes } from './modules/sessions/sessions.routes.js';
import { createStatsRepository } from './modules/stats/stats.repository.js';
import { registerStatsRoutes } from './modules/stats/stats.routes.js';
import { createStatsService } from './modules/stats/stats.service.js';
import { registerUsersRoutes } from './modules/users/users.routes.js';
import type { Services } from './services.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const SANE_REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const PRUNE_INTERVAL_MS = 60 * 60 * 1000;

function validators() {
  // Bodies are taken as sent (no type coercion, unknown fields rejected, not stripped);
  // query strings and path parameters arrive as text and are coerced to the schema's types.
  const base = { allErrors: true, removeAdditional: false, useDefaults: true, strict: false } as const;
  const body = addFormats(new Ajv({ ...base, coerceTypes: false }));
  const query = addFormats(new Ajv({ ...base, coerceTypes: true }));
  for (const ajv of [body, query]) ajv.addSchema(ProblemSchema);
  return { body, query };
}

type OpenApiDocument = {
  paths?: Record<string, Record<string, { parameters?: { in: string; required?: boolean; schema?: { default?: unknown } }[] }>>;
};

/**
 * A query parameter with a default (limit, sort) is filled in when absent, so the client need not
 * send it; the schema lists it as required only so that handlers see it typed as always there.
 */
function optionalDefaults<T extends OpenApiDocument>(document: T): T {
  for (const operations of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const parameter of operation.parameters ?? []) {
        if (parameter.in === 'query' && parameter.schema?.default !== undefined) parameter.required = false;
      }
    }
  }
  return document;
}

export async function buildApp(services: Services, logger: Logger): Promise<FastifyInstance> {
  const { config } = services;
  const app = Fastify({
    loggerInstance: logger as unknown as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    requestIdHeader: false,
    childLoggerFactory: (parent, bindings, options) =>
      new DeferredChildLogger(parent as unknown as Logger, bindings, options) as unknown as FastifyBaseLogger,
    genReqId(request) {
      const sent = request.headers['x-request-id'];
      return typeof sent === 'string' && SANE_REQUEST_ID.test(sent) ? sent : randomUUID();
    },
    // X-Forwarded-For is believed only from the listed proxies, so a client cannot choose the
    // address that its rate limits and sign-in throttling are keyed on.
    trustProxy: config.trustProxy ?? false,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false } },
  });

  const ajv = validators();
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? ajv.body : ajv.query).compile(schema));
  app.setErrorHandler(errorHandler);
  app.addSchema(ProblemSchema);

  // Hooks that run on every request and never wait are callback-style: an async hook costs each
  // request a promise and extra microtask turns for nothing.
  registerResponseHeaders(app, publicCachePolicies(Math.min(300, Math.floor(config.signingKeyActivationSeconds / 3))));
  await registerCors(app, config.corsOrigins);
  // JSON (and form bodies, in the /api scope) only: a text/plain body is a 415, not a string.
  app.removeContentTypeParser('text/plain');
  registerJsonParser(app, config.jsonMaxDepth);
  registerRequestMetrics(app, services.metrics);

  // Sign-in and sign-up routes (config.signIn) get their own, stricter limit, which stays on when
  // the general limit is off. On a sign-up route a caller with credentials (an admin creating
  // users) is not signing up: it is counted apart, under the general limit.
  // This hook must run before the rate limiter's own onRoute hook.
  app.addHook('onRoute', (route) => {
    const signIn = route.config?.signIn;
    if (route.config && signIn) {
      const withCredentials = (request: FastifyRequest) => signIn === 'anonymous' && request.headers.authorization !== undefined;
      route.config.rateLimit = {
        max: (request) => (withCredentials(request) ? config.rateLimitPerMinute : config.signInRateLimitPerMinute),
        timeWindow: 60_000,
        groupId: 'signin',
        keyGenerator: (request) => `${normalizeIP(request.ip)}${withCredentials(request) ? ':with-credentials' : ''}`,
        ...(config.rateLimitPerMinute === 0 ? { allowList: withCredentials } : {}),
      };
    }
  });
  await app.register(rateLimit, {
    global: config.rateLimitPerMinute > 0,
    max: config.rateLimitPerMinute || 1,
    timeWindow: 60_000,
    redis: services.redis ?? undefined,
    nameSpace: `${config.redisKeyPrefix}rate:`,
    // A lost Redis must not take the API down; sign-in throttling has its own fallback.
    skipOnError: true,
    errorResponseBuilder: (_request, context) =>
      new AppError('too_many_requests', `More than ${context.max} requests a minute from this address; slow down.`, {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) },
      }),
  });
  registerNotFound(app, config.rateLimitPerMinute > 0 ? app.rateLimit() : null);
  registerAuth(app, services.sessions);
  registerReadConsistency(
    app,
    services.database.replicas && {
      replicas: services.database.replicas,
      redis: services.redis,
      keyPrefix: config.redisKeyPrefix,
      maxLagSeconds: config.databaseReplicaMaxLagSeconds,
      logger,
    },
  );

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'gatehouse', version: '1.0.0', description: 'User management and authentication over HTTP.' },
      // Relative: requests from /docs go to the instance that served the page.
      servers: [{ url: '/', description: 'This instance' }],
      tags: [
        { name: 'users', description: 'User accounts: create, list, read, change, delete; sign-in history' },
        { name: 'sessions', description: 'Sign-in for tokens, refresh, sign-out, and the keys that verify tokens' },
        { name: 'events', description: 'The feed of recorded events (CloudEvents)' },
        { name: 'imports', description: 'Bulk import of users from NDJSON or CSV, and its progress' },
        { name: 'stats', description: 'Counts of users and sign-ins, for the admin page' },
        { name: 'origin', description: "The origin service's /api routes, kept for its clients" },
        { name: 'operations', description: 'Liveness, readiness and metrics' },
      ],
      components: {
        securitySchemes: {
          basic: { type: 'http', scheme: 'basic' },
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    transformObject: (document) =>
      'openapiObject' in document ? optionalDefaults(document.openapiObject as OpenApiDocument) : document.swaggerObject,
  });
  // The docs page loads nothing from elsewhere: its assets come from @fastify/swagger-ui and the
  // document from /docs/json, so the policy names no other origin (the plugin's default allows
  // any https: style or font and an external validator's images).
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { validatorUrl: null },
    staticCSP: {
      'default-src': "'self'",
      'base-uri': "'self'",
      'connect-src': "'self'",
      'font-src': ["'self'", 'data:'],
      'form-action': "'self'",
      'frame-ancestors': "'none'",
      'img-src': ["'self'", 'data:'],
      'object-src': "'none'",
      'script-src': "'self'",
      'script-src-attr': "'none'",
      'style-src': "'self'",
    },
  });

  registerOpsRoutes(app, services.database.db, services.metrics, services.lifecycle);
  registerUsersRoutes(app, services.users, services.idempotency, services.userPages);
  registerSessionsRoutes(app, services.sessions, services.tokens);
  registerEventsRoutes(app, services.eventsRepository, config.eventSource);
  await registerImportsRoutes(app, services.imports, services.idempotency, config.importMaxBytes);
  registerStatsRoutes(app, createStatsService(createStatsRepository(services.database.db, services.database.dialect)));
  registerAdminRoutes(app);
  // Form bodies only in the origin's scope (POST /api/users): /v1 stays JSON-only, so a cross-site
  // HTML form (no CORS preflight) never reaches it.
  await app.register(async (origin) => {
    await origin.register(formbody);
    registerCompatRoutes(origin, services.users, services.sessions);
  });

  // Hourly housekeeping: old login events, old events (published ones; every one without a broker,
  // where the feed is their only reader) and expired Idempotency-Key records.
  const pruneTimer = setInterval(() => {
    const loginsBefore = new Date(Date.now() - config.loginEventRetentionDays * 86_400_000).toISOString();
    const eventsBefore = new Date(Date.now() - config.eventRetentionDays * 86_400_000).toISOString();
    Promise.all([
      services.loginsRepository.deleteOlderThan(loginsBefore),
      services.eventsRepository.deleteOlderThan(eventsBefore, config.amqpUrl === null),
      services.idempotency.deleteExpired(),
    ])
      .then(
        ([logins, events, idempotencyKeys]) =>
          (logins > 0 || events > 0 || idempotencyKeys > 0) &&
          app.log.info({ logins, events, idempotency_keys: idempotencyKeys }, 'pruned old login events, events and idempotency keys'),
      )
      .catch((error) => app.log.warn({ err: error }, 'pruning failed'));
  }, PRUNE_INTERVAL_MS);
  pruneTimer.unref();
  app.addHook('onClose', async () => clearInterval(pruneTimer));

  return app;
}
