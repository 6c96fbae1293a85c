// The gatehouse command as a real process (serve, SIGTERM, migrate, users …), the first admin,
// and configuration validation.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { after, describe, test } from 'node:test';
import { buildApp } from '../src/app.js';
import { ensureFirstAdmin } from '../src/bootstrap.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { createLogger } from '../src/http/logger.js';
import { createServices } from '../src/services.js';
import { buildTestApp } from './helpers/app.js';
import { createTestDatabase, targets } from './helpers/databases.js';

const REPO = new URL('..', import.meta.url).pathname;

/** Asserts a complete RFC 9457 problem with the status and code; returns the body. */

for (const { target, skip } of await targets()) {
  describe(`the first admin on ${target}`, { skip }, () => {
    const logger = createLogger({ logLevel: 'silent' });

    test('is created with a generated password that signs in as admin, exactly once', async () => {
      const database = await createTestDatabase(target);
      const config = loadConfig({}, { databaseUrl: database.url, databasePoolMax: 2, passwordHashProfile: 'test' });
      const services = await createServices(config, logger);
      const app = await buildApp(services, logger);
      try {
        const first = await ensureFirstAdmin(services);
        assert.ok(first, 'an admin was created');
        assert.equal(first.username, 'admin');
        assert.equal(typeof first.generatedPassword, 'string');
        const password = first.generatedPassword as string;
        assert.ok([...password].length >= 12, 'the generated password meets the policy');

        const signIn = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { username: 'admin', password } });
        assert.equal(signIn.statusCode, 201, signIn.body);
        assert.ok(signIn.json().user.roles.includes('admin'));

        assert.equal(await ensureFirstAdmin(services), null, 'a second call finds the admin');
        const other = await createServices(config, logger);
        try {
          assert.equal(await ensureFirstAdmin(other), null, 'another instance on the same database finds it too');
        } finally {
          await other.close();
        }
        const listed = await app.inject({
          url: '/v1/users?role=admin',
          headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` },
        });
        assert.equal(listed.json().items.length, 1, 'exactly one admin exists');
      } finally {
        await app.close();
        await services.close();
        await database.drop();
      }
    });

    test('takes GATEHOUSE_ADMIN_USERNAME and GATEHOUSE_ADMIN_PASSWORD when they are set, and prints nothing', async () => {
      const database = await createTestDatabase(target);
      const password = 'configured-admin-password-1';
      const config = loadConfig(
        { GATEHOUSE_ADMIN_USERNAME: 'Boss', GATEHOUSE_ADMIN_PASSWORD: password },
        { databaseUrl: database.url, databasePoolMax: 2, passwordHashProfile: 'test' },
      );
      const services = await createServices(config, logger);
      const app = await buildApp(services, logger);
      try {
        assert.deepEqual(await ensureFirstAdmin(services), { username: 'boss', generatedPassword: null });
        const signIn = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { username: 'boss', password } });
        assert.equal(signIn.statusCode, 201, signIn.body);
        assert.ok(signIn.json().user.roles.includes('admin'));
      } finally {
        await app.close();
        await services.close();
        await database.drop();
      }
    });
  });

  describe(`the gatehouse command on ${target}`, { skip }, () => {
    after(() => killStragglers());

    test('serve prints a generated admin password once, answers /healthz, and prints none on a restart', async () => {
      const database = await createTestDatabase(target);
      try {
        const env = { DATABASE_URL: database.url, GATEHOUSE_PASSWORD_HASH_PROFILE: 'test' };
        const first = await startServer(env);
        const passwordLines = first
          .output()
          .stdout.split('\n')
          .filter((line) => line.includes('password:'));
        assert.equal(passwordLines.length, 1, first.output().stdout);
        const password = (passwordLines[0] as string).split('password:')[1]?.trim() ?? '';
        assert.ok(password.length >= 12, `a password was printed: ${passwordLines[0]}`);
        assert.equal(first.output().stdout.split(password).length - 1, 1, 'the password is printed exactly once');
        assert.equal((await first.post('/v1/sessions', { username: 'admin', password })).status, 201);
        assert.equal(await first.stop(), 0);

        const second = await startServer(env);
        assert.ok(!second.output().stdout.includes('password:'), second.output().stdout);
        assert.ok(!second.output().stdout.includes(password));
        assert.equal((await second.post('/v1/sessions', { username: 'admin', password })).status, 201, 'the same admin still signs in');
        assert.equal(await second.stop(), 0);
      } finally {
        await database.drop();
      }
    });

    test('SIGTERM lets an in-flight request finish with a normal response, then exits 0', async () => {
      const database = await createTestDatabase(target);
      try {
        const password = 'process-admin-password-1';
        const server = await startServer({
          DATABASE_URL: database.url,
          GATEHOUSE_PASSWORD_HASH_PROFILE: 'test',
          GATEHOUSE_ADMIN_PASSWORD: password,
        });
        const body = JSON.stringify({ username: 'admin', password });
        const half = Math.floor(body.length / 2);
        const inFlight = new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = httpRequest(
            {
              host: '127.0.0.1',
              port: server.port,
              method: 'POST',
              path: '/v1/sessions',
              agent: false,
              headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': 'in-flight-1' },
            },
            (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (chunk) => {
                text += chunk;
              });
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
            },
          );
          req.on('error', reject);
          req.write(body.slice(0, half));
          server
            .waitFor((out) => out.includes('"reqId":"in-flight-1"'), 'the server received the request')
            .then(() => {
              server.child.kill('SIGTERM');
              return server.waitFor((out) => out.includes('shutting down'), 'the server began shutting down');
            })
            .then(() => req.end(body.slice(half)), reject);
        });
        const response = await inFlight;
        assert.equal(response.status, 201, response.body);
        assert.ok(JSON.parse(response.body).access_token, 'a normal sign-in response');
        assert.equal(await within(server.exited, 10_000, 'exit after SIGTERM'), 0);
      } finally {
        await database.drop();
      }
    });

    test('users create, list, set-password and disable manage accounts; migrate reports the state', async () => {
      const database = await createTestDatabase(target);
      const env = { DATABASE_URL: database.url, GATEHOUSE_PASSWORD_HASH_PROFILE: 'test' };
      try {
        const fresh = await runCli(['migrate'], env);
        assert.equal(fresh.code, 0, fresh.stderr);
        assert.match(fresh.stdout, /applied: .*create_core_tables/);
        const again = await runCli(['migrate'], env);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /up to date/);

        const username = `cli.${process.pid}`;
        const email = `${username}@example.com`;
        const created = await runCli(
          ['users', 'create', '--username', username, '--email', email, '--password', 'cli-first-password-1'],
          env,
        );
        assert.equal(created.code, 0, created.stderr);
        assert.match(created.stdout, new RegExp(`created ${username.replace('.', '\\.')}`));

        const duplicate = await runCli(
          ['users', 'create', '--username', username, '--email', `x${email}`, '--password', 'cli-first-password-1'],
          env,
        );
        assert.equal(duplicate.code, 1);
        assert.match(duplicate.stderr, /username/i);
        assert.ok(!/\n\s+at /.test(duplicate.stderr), `no stack trace: ${duplicate.stderr}`);

        const listed = await runCli(['users', 'list'], env);
        assert.equal(listed.code, 0, listed.stderr);
        const row = tableRow(listed.stdout, username);
        assert.equal(row.USERNAME, username);
        assert.equal(row.EMAIL, email);
        assert.equal(row.STATUS, 'active');

        const reset = await runCli(['users', 'set-password', username, '--password', 'cli-second-password-2'], env);
        assert.equal(reset.code, 0, reset.stderr);
        const t = await buildTestApp(target, {}, { database, keepDatabase: true });
        try {
          const signIn = (password: string) => t.app.inject({ method: 'POST', url: '/v1/sessions', payload: { username, password } });
          assert.equal((await signIn('cli-second-password-2')).statusCode, 201, 'the new password signs in');
          assert.equal((await signIn('cli-first-password-1')).statusCode, 401, 'the old one does not');
        } finally {
          await t.close();
        }

        const disabled = await runCli(['users', 'disable', username], env);
        assert.equal(disabled.code, 0, disabled.stderr);
        assert.equal(tableRow((await runCli(['users', 'list'], env)).stdout, username).STATUS, 'disabled');
        const after = await buildTestApp(target, {}, { database, keepDatabase: true });
        try {
          const signIn = await after.app.inject({
            method: 'POST',
            url: '/v1/sessions',
            payload: { username, password: 'cli-second-password-2' },
          });
          assert.equal(signIn.statusCode, 401, 'a disabled user cannot sign in');
        } finally {
          await after.close();
        }
      } finally {
        await database.drop();
      }
    });
  });
}

describe('the gatehouse command, whatever the database', () => {
  test('an unknown command exits 2 with usage', async () => {
    const result = await runCli(['frobnicate'], {});
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown command: frobnicate/);
    assert.match(result.stderr, /Usage:/);
  });

  test('a bad PORT exits 1 and names PORT', async () => {
    const result = await runCli(['serve'], { PORT: 'abc', DATABASE_URL: 'sqlite::memory:' });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /PORT/);
    assert.ok(!/\n\s+at /.test(result.stderr), `no stack trace: ${result.stderr}`);
  });
});

describe('configuration', () => {
  const configProblem = (env: Record<string, string>): ConfigError => {
    try {
      loadConfig(env);
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error;
    }
    assert.fail(`loadConfig(${JSON.stringify(env)}) did not throw`);
  };

  test('defaults serve on 127.0.0.1:8080 from ./data/gatehouse.db with open sign-up off', () => {
    const config = loadConfig({});
    assert.equal(config.port, 8080);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.databaseUrl, 'sqlite:./data/gatehouse.db');
    assert.equal(config.openSignup, false);
    assert.equal(config.rateLimitPerMinute, 1200);
    assert.equal(config.passwordHashProfile, 'owasp');
    assert.equal(config.adminPassword, null);
    assert.ok(Object.isFrozen(config));
  });

  test('reads each setting from its environment variable', () => {
    const config = loadConfig({
      PORT: '9090',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://gatehouse@db:5432/gatehouse',
      GATEHOUSE_OPEN_SIGNUP: 'true',
      GATEHOUSE_RATE_LIMIT_PER_MINUTE: '0',
    });
    assert.equal(config.port, 9090);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.databaseUrl, 'postgres://gatehouse@db:5432/gatehouse');
    assert.equal(config.openSignup, true);
    assert.equal(config.rateLimitPerMinute, 0);
  });

  test('a PORT that is not a port is refused, naming PORT', () => {
    for (const PORT of ['abc', '70000', '-1', '80.5']) assert.match(configProblem({ PORT }).message, /PORT/);
  });

  test('a DATABASE_URL that is neither sqlite: nor postgres:// is refused, naming DATABASE_URL', () => {
    assert.match(configProblem({ DATABASE_URL: 'mysql://x' }).message, /DATABASE_URL/);
  });

  test('every bad variable is named at once', () => {
    const { message } = configProblem({ PORT: 'abc', DATABASE_URL: 'mysql://x', GATEHOUSE_OPEN_SIGNUP: 'maybe' });
    for (const name of ['PORT', 'DATABASE_URL', 'GATEHOUSE_OPEN_SIGNUP']) assert.match(message, new RegExp(name));
  });

  test('the cheap test hash profile refuses to serve on a non-loopback HOST', () => {
    const { message } = configProblem({ GATEHOUSE_PASSWORD_HASH_PROFILE: 'test', HOST: '0.0.0.0' });
    assert.match(message, /GATEHOUSE_PASSWORD_HASH_PROFILE/);
    assert.match(message, /HOST/);
    assert.equal(loadConfig({ GATEHOUSE_PASSWORD_HASH_PROFILE: 'test' }).passwordHashProfile, 'test', 'loopback is fine');
  });
});

// ---- real processes -------------------------------------------------------------------------

const PROCESS_TIMEOUT_MS = 30_000;
const running = new Set<ChildProcess>();

function killStragglers(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/** The parent's environment without any gatehouse setting, plus the given ones. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(GATEHOUSE_|DATABASE_|PORT$|HOST$|NODE_TEST_CONTEXT$)/.test(name)) continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

function spawnGatehouse(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, ['bin/gatehouse.js', ...args], { cwd: REPO, env: childEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gatehouse ${args.join(' ')} did not exit within ${PROCESS_TIMEOUT_MS} ms\n${stdout}\n${stderr}`));
    }, PROCESS_TIMEOUT_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve(code ?? (signal ? -1 : null));
    });
  });
  return { child, exited, output: () => ({ stdout, stderr }) };
}

async function runCli(args: string[], env: Record<string, string>) {
  const cli = spawnGatehouse(args, env);
  cli.child.stdin?.end();
  const code = await cli.exited;
  return { code, ...cli.output() };
}

/** The promise's value, or a failure naming what did not happen within the bound. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function startServer(env: Record<string, string>) {
  const port = await freePort();
  const started = spawnGatehouse(['serve'], { ...env, PORT: String(port), HOST: '127.0.0.1' });
  let exitCode: number | null | undefined;
  started.exited.then(
    (code) => {
      exitCode = code;
    },
    () => {},
  );
  const base = `http://127.0.0.1:${port}`;

  /** Polls the server's output until the predicate holds; bounded. */
  async function waitFor(predicate: (stdout: string) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + PROCESS_TIMEOUT_MS;
    while (!predicate(started.output().stdout)) {
      if (exitCode !== undefined || Date.now() > deadline) {
        const { stdout, stderr } = started.output();
        throw new Error(`waiting for ${what}: exited=${exitCode}\n${stdout}\n${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  const deadline = Date.now() + PROCESS_TIMEOUT_MS;
  for (;;) {
    const health = await fetch(`${base}/healthz`).catch(() => null);
    if (health?.status === 200) break;
    if (exitCode !== undefined || Date.now() > deadline) {
      const { stdout, stderr } = started.output();
      throw new Error(`gatehouse serve did not become healthy (exit ${exitCode})\n${stdout}\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    ...started,
    port,
    waitFor,
    post: (path: string, body: unknown) =>
      fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    /** SIGTERM, then the exit code (bounded at 10 s). */
    async stop(): Promise<number | null> {
      started.child.kill('SIGTERM');
      return within(started.exited, 10_000, 'exit after SIGTERM');
    },
  };
}

/** The row of a `users list` table whose USERNAME cell is the username, as header -> cell. */
function tableRow(stdout: string, username: string): Record<string, string> {
  const [header, ...rows] = stdout.split('\n').filter(Boolean);
  assert.ok(header, stdout);
  const columns = [...header.matchAll(/\S+(?: \S+)*/g)].map((match) => ({ name: match[0], start: match.index ?? 0 }));
  assert.deepEqual(
    columns.map((column) => column.name),
    ['ID', 'USERNAME', 'EMAIL', 'ROLES', 'STATUS', 'LAST LOGIN'],
  );
  const cells = (row: string) =>
    Object.fromEntries(columns.map((column, i) => [column.name, row.slice(column.start, columns[i + 1]?.start ?? row.length).trim()]));
  const row = rows.map(cells).find((one) => one.USERNAME === username);
  assert.ok(row, `${username} is a row of\n${stdout}`);
  return row;
}
