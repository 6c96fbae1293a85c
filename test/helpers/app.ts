// buildTestApp: the real app (same buildApp as production) on a fresh database with the cheap
// test hash profile, a known first admin, and the log captured in memory so tests can grep it.
import { Writable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/app.js';
import { ensureFirstAdmin } from '../../src/bootstrap.js';
import { type Config, loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/http/logger.js';
import { createServices, type Services } from '../../src/services.js';
import { createTestDatabase, type Target, type TestDatabase } from './databases.js';

export const ADMIN = { username: 'root', password: 'admin-password-for-tests-1' };

/** The shipped sign-in limits and hashing queue, which buildTestApp raises for the other suites. */
export const SHIPPED_SIGNIN_LIMITS: Partial<Config> = (() => {
  const defaults = loadConfig({});
  return {
    signInFailuresPerUsernameAndIp: defaults.signInFailuresPerUsernameAndIp,
    signInFailuresPerIpPerDay: defaults.signInFailuresPerIpPerDay,
    signInFailuresPerUsernamePerHour: defaults.signInFailuresPerUsernamePerHour,
    signInRateLimitPerMinute: defaults.signInRateLimitPerMinute,
    hashQueueMax: defaults.hashQueueMax,
  };
})();

export interface TestApp {
  app: FastifyInstance;
  services: Services;
  database: TestDatabase;
  target: Target;
  logs: string[];
  /** Authorization header value for Basic credentials. */
  basic(username: string, password: string): string;
  adminBasic: string;
  /** Creates a user through the API as the admin; returns the created user. */
  createUser(
    overrides?: Partial<{ username: string; email: string; password: string; roles: string[]; display_name: string }>,
  ): Promise<TestUser>;
  /** Signs in through POST /v1/sessions and returns the token pair. */
  signIn(username: string, password: string): Promise<{ access_token: string; refresh_token: string; user: { id: string } }>;
  close(): Promise<void>;
}

export interface TestUser {
  id: string;
  username: string;
  email: string;
  password: string;
  roles: string[];
  status: string;
  [key: string]: unknown;
}

let counter = 0;
export function uniqueName(prefix = 'user'): string {
  counter += 1;
  return `${prefix}${process.pid}x${counter}`;
}

export async function buildTestApp(
  target: Target,
  overrides: Partial<Config> = {},
  options: { database?: TestDatabase; keepDatabase?: boolean } = {},
): Promise<TestApp> {
  const database = options.database ?? (await createTestDatabase(target));
  const config = loadConfig(
    {},
    {
      databaseUrl: database.url,
      databasePoolMax: 5,
      passwordHashProfile: 'test',
      adminUsername: ADMIN.username,
      adminPassword: ADMIN.password,
      rateLimitPerMinute: 0,
      // Suites sign in often from one address; the throttling suite sets the real limits.
      signInRateLimitPerMinute: 1_000_000,
      signInFailuresPerUsernameAndIp: 1_000_000,
      signInFailuresPerIpPerDay: 1_000_000,
      signInFailuresPerUsernamePerHour: 1_000_000,
      // Suites fire 20 requests at once; shedding load is the throttling suite's subject.
      hashQueueMax: 10_000,
      logLevel: 'info',
      ...overrides,
    },
  );
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  const logger = createLogger(config, sink);
  let services: Services | null = null;
  let app: FastifyInstance;
  try {
    services = await createServices(config, logger);
    await ensureFirstAdmin(services);
    app = await buildApp(services, logger);
    await app.ready();
  } catch (error) {
    // A setup that fails must not leave its database behind on the shared server.
    await services?.close().catch(() => {});
    if (!options.keepDatabase && !options.database) await database.drop().catch(() => {});
    throw error;
  }
  const basic = (username: string, password: string) => `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  const adminBasic = basic(ADMIN.username, ADMIN.password);

  const testApp: TestApp = {
    app,
    services,
    database,
    target,
    logs,
    basic,
    adminBasic,
    async createUser(fields = {}) {
      const username = fields.username ?? uniqueName();
      const body = {
        username,
        email: fields.email ?? `${username}@example.com`,
        password: fields.password ?? `pw-${username}-long-enough`,
        ...(fields.roles ? { roles: fields.roles } : {}),
        ...(fields.display_name ? { display_name: fields.display_name } : {}),
      };
      const response = await app.inject({ method: 'POST', url: '/v1/users', headers: { authorization: adminBasic }, payload: body });
      if (response.statusCode !== 201) throw new Error(`createUser failed: ${response.statusCode} ${response.body}`);
      return { ...response.json(), password: body.password } as TestUser;
    },
    async signIn(username, password) {
      const response = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { username, password } });
      if (response.statusCode !== 201) throw new Error(`signIn failed: ${response.statusCode} ${response.body}`);
      return response.json();
    },
    async close() {
      await app.close();
      await services.close();
      if (!options.keepDatabase) await database.drop();
    },
  };
  return testApp;
}

/** Runs `run` on an app of its own, closed (and its database dropped) afterwards. */
export async function withTestApp(target: Target, overrides: Partial<Config>, run: (app: TestApp) => Promise<void>): Promise<void> {
  const app = await buildTestApp(target, overrides);
  try {
    await run(app);
  } finally {
    await app.close();
  }
}

export function bearer(token: string): string {
  return `Bearer ${token}`;
}

/** Asserts the response is a problem+json with the code, and returns its body. */
export function problem(response: LightMyRequestResponse) {
  return { ...response.json(), status: response.statusCode, contentType: response.headers['content-type'] } as {
    status: number;
    contentType: string;
    code: string;
    errors?: { field: string; message: string }[];
    request_id: string;
    detail: string;
  };
}
