// The servers a benchmark run compares: gatehouse (`node bin/gatehouse.cjs serve` on a fresh
// database, production argon2id, limits raised so the run measures the service and not its
// limits), the bare-Fastify ceiling, and the origin Flask app when its Debian packages are present.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { aptInstall, freePort } from '../../scripts/cluster/system.js';
import { startCommand } from '../../scripts/start-command.js';
import { type ServerProcess, startServer } from './processes.js';

export const REPO = new URL('../..', import.meta.url).pathname;
export const ADMIN = { username: 'admin', password: 'bench-admin-password-1' };
export const MEMBER = { username: 'bench-member', password: 'bench-member-password-1' };
// The origin Flask app lives beside the checkout (`../shared/peers/flask-seed`); a copy of the tree
// elsewhere (a clone in /tmp for a clean benchmark) names it with BENCH_ORIGIN_DIR.
const ORIGIN_DIR = resolve(process.env.BENCH_ORIGIN_DIR || join(REPO, '..', 'shared', 'peers', 'flask-seed'));
const MANY = '100000000';

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

export async function startCeiling(): Promise<ServerProcess> {
  const port = await freePort();
  return startServer({
    name: 'ceiling',
    command: process.execPath,
    args: ['--import', 'tsx', 'bench/ceiling-server.ts'],
    env: { PORT: String(port) },
    cwd: REPO,
    port,
    readyPath: '/',
    readyTimeoutMs: 30_000,
  });
}

/** gatehouse on `databaseUrl`; `extraEnv` overrides the defaults below (S7 turns the import worker on). */
export async function startGatehouse(
  databaseUrl: string,
  extraEnv: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<ServerProcess> {
  const port = await freePort();
  // As `npm start` and the image run it: their memory settings (bin/launch.js says why).
  const start = startCommand();
  return startServer({
    name: 'gatehouse',
    command: process.execPath,
    args: [...start.nodeArgs, ...nodeArgs, 'bin/gatehouse.cjs', 'serve'],
    env: {
      ...start.env,
      DATABASE_URL: databaseUrl,
      HOST: '127.0.0.1',
      PORT: String(port),
      GATEHOUSE_LOG_LEVEL: 'warn',
      GATEHOUSE_ADMIN_USERNAME: ADMIN.username,
      GATEHOUSE_ADMIN_PASSWORD: ADMIN.password,
      GATEHOUSE_PASSWORD_HASH_PROFILE: 'owasp',
      GATEHOUSE_RATE_LIMIT_PER_MINUTE: '0',
      GATEHOUSE_SIGNIN_RATE_LIMIT_PER_MINUTE: '10000000',
      GATEHOUSE_SIGNIN_FAILURES_PER_USERNAME_IP: '1000000',
      GATEHOUSE_SIGNIN_FAILURES_PER_IP_PER_DAY: MANY,
      GATEHOUSE_SIGNIN_FAILURES_PER_USERNAME_PER_HOUR: MANY,
      GATEHOUSE_RELAY_ENABLED: 'false',
      GATEHOUSE_IMPORT_WORKER_ENABLED: 'false',
      ...extraEnv,
    },
    cwd: REPO,
    port,
    readyPath: '/readyz',
    readyTimeoutMs: 60_000,
  });
}

async function call(url: string, init: RequestInit & { expect: number }): Promise<unknown> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  const text = await response.text();
  if (response.status !== init.expect) throw new Error(`${init.method ?? 'GET'} ${url}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Seeds the admin's 99 companions (100 users, the origin's pattern) and one member; returns a Bearer token. */
export async function seedGatehouse(base: string): Promise<{ accessToken: string }> {
  const admin = basic(ADMIN.username, ADMIN.password);
  const create = (username: string, password: string) =>
    call(`${base}/v1/users`, {
      method: 'POST',
      headers: { authorization: admin, 'content-type': 'application/json' },
      body: JSON.stringify({ username, email: `${username}@example.com`, password }),
      expect: 201,
    });
  await create(MEMBER.username, MEMBER.password);
  const BATCH = 4;
  for (let first = 1; first < 99; first += BATCH) {
    const batch = [];
    for (let n = first; n < Math.min(99, first + BATCH); n++)
      batch.push(create(`seed${String(n).padStart(4, '0')}`, `seed-password-${n}-long`));
    await Promise.all(batch);
  }
  const session = (await call(`${base}/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(MEMBER),
    expect: 201,
  })) as { access_token: string };
  return { accessToken: session.access_token };
}

const ORIGIN_PACKAGES = ['python3-flask', 'python3-flask-httpauth', 'python3-flask-sqlalchemy', 'gunicorn'];

function originMissing(): string | null {
  if (!existsSync('/usr/bin/gunicorn')) return 'gunicorn is not installed';
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import flask, flask_httpauth, flask_sqlalchemy'], { stdio: 'ignore', timeout: 20_000 });
  } catch {
    return 'python3-flask, python3-flask-httpauth or python3-flask-sqlalchemy is not installed';
  }
  return null;
}

/**
 * Why the origin column cannot run here, or null when it can. Missing Debian packages are installed
 * with apt-get when the runner is root, as the cluster harness installs its tools (progress on
 * `progress`); otherwise the reason says what to install.
 */
export async function originUnavailable(progress: (line: string) => void): Promise<string | null> {
  if (!existsSync(join(ORIGIN_DIR, 'run.sh')))
    return `${ORIGIN_DIR}/run.sh is missing (the origin app is looked for beside the checkout; BENCH_ORIGIN_DIR names another place)`;
  const missing = originMissing();
  if (!missing) return null;
  try {
    await aptInstall(ORIGIN_PACKAGES, progress);
  } catch (error) {
    return `${missing}: ${error instanceof Error ? error.message : String(error)}`;
  }
  return originMissing();
}

export const ORIGIN_ADMIN = basic('admin', 'adminpass');

/** The origin app (gunicorn, 2 sync workers) on a temporary SQLite file with admin + 99 users. */
export async function startOrigin(): Promise<{ server: ServerProcess; cleanup(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-origin-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    const port = await freePort();
    const server = await startServer({
      name: 'origin',
      command: join(ORIGIN_DIR, 'run.sh'),
      args: [],
      env: { PORT: String(port), WORKERS: '2', SEED_USERS: '99', USERS_DB: join(dir, 'users.db') },
      cwd: ORIGIN_DIR,
      port,
      readyPath: '/api/health',
      readyTimeoutMs: 120_000, // seeding hashes 100 passwords with 260,000 PBKDF2 rounds each
    });
    return { server, cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }
}
