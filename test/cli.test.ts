// The gatehouse command as a real process: serve, SIGTERM, migrate, users …, its help, usage errors
// and exit codes; the first admin; configuration validation.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { after, describe, test } from 'node:test';
import { buildApp } from '../src/app.js';
import { ensureFirstAdmin } from '../src/bootstrap.js';
import { ConfigError, loadConfig, SETTINGS } from '../src/config.js';
import { createLogger } from '../src/http/logger.js';
import { operatorCaller } from '../src/modules/users/users.view.js';
import { createServices } from '../src/services.js';
import { buildTestApp } from './helpers/app.js';
import { createTestDatabase, targets } from './helpers/databases.js';
import { killRemainingChildren, runGatehouse, type Server, spawnGatehouse, startServer, within } from './helpers/processes.js';

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
    after(() => killRemainingChildren());

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
        assert.equal((await post(first, '/v1/sessions', { username: 'admin', password })).status, 201);
        assert.equal(await first.stop(), 0);

        const second = await startServer(env);
        assert.ok(!second.output().stdout.includes('password:'), second.output().stdout);
        assert.ok(!second.output().stdout.includes(password));
        assert.equal((await post(second, '/v1/sessions', { username: 'admin', password })).status, 201, 'the same admin still signs in');
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

    test('users list pages through more than the API page of 100, up to --limit', async () => {
      const t = await buildTestApp(target);
      try {
        for (let i = 0; i < 104; i += 1) {
          const username = `many${i}`;
          await t.services.users.create(
            { username, email: `${username}@example.com`, password: `pw-${username}-long-enough` },
            operatorCaller(),
          );
        }
        const env = { DATABASE_URL: t.database.url };
        const [some, all] = await Promise.all([
          runGatehouse(['users', 'list', '--json', '--limit', '103'], env),
          runGatehouse(['users', 'list', '--json', '--limit', '1000'], env),
        ]);
        assert.equal(some.code, 0, some.stderr);
        const first = (JSON.parse(some.stdout) as { username: string }[]).map((user) => user.username);
        assert.equal(first.length, 103);
        assert.equal(new Set(first).size, 103, 'no user twice across pages');
        assert.match(some.stderr, /more match/);
        assert.equal(all.code, 0, all.stderr);
        assert.equal((JSON.parse(all.stdout) as unknown[]).length, 105, 'every user (and the first admin), oldest first');
        assert.equal(all.stderr, '', 'nothing more to say');
      } finally {
        await t.close();
      }
    });

    test('users create, list, set-password and disable manage accounts, with stable exit codes; migrate reports the state', async () => {
      const database = await createTestDatabase(target);
      const env = { DATABASE_URL: database.url, GATEHOUSE_PASSWORD_HASH_PROFILE: 'test' };
      try {
        const fresh = await runGatehouse(['migrate'], env);
        assert.equal(fresh.code, 0, fresh.stderr);
        assert.match(fresh.stdout, /applied: .*create_core_tables/);
        const again = await runGatehouse(['migrate'], env);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /up to date/);

        const username = `cli.${process.pid}`;
        const email = `${username}@example.com`;
        const created = await runGatehouse(
          ['users', 'create', '--username', username, '--email', email, '--password', 'cli-first-password-1'],
          env,
        );
        assert.equal(created.code, 0, created.stderr);
        assert.match(created.stdout, new RegExp(`created ${username.replace('.', '\\.')}`));

        const duplicate = await runGatehouse(
          ['users', 'create', '--username', username, '--email', `x${email}`, '--password', 'cli-first-password-1'],
          env,
        );
        assert.equal(duplicate.code, 4, 'a conflict');
        assert.match(oneLine(duplicate.stderr), /^gatehouse: .*username/i);

        const weak = await runGatehouse(
          ['users', 'create', '--username', `w${username}`, '--email', 'not-an-email', '--password', 'x'],
          env,
        );
        assert.equal(weak.code, 1, 'a refused value');
        assert.match(oneLine(weak.stderr), /email/);

        // The password from standard input, as an operator would pipe it; --admin gives both roles.
        const admin = spawnGatehouse(['users', 'create', '--username', `a${username}`, '--email', `a${email}`, '--admin'], env);
        admin.child.stdin?.end('cli-admin-password-1\n');
        assert.equal(await within(admin.exited, 60_000, 'users create to exit'), 0, admin.output().stderr);

        // Read-only commands, at once to spare the suite's time.
        const [listed, json, limited, ...missing] = await Promise.all([
          runGatehouse(['users', 'list'], env),
          runGatehouse(['users', 'list', '--json', '--search', username], env),
          runGatehouse(['users', 'list', '--limit', '1'], env),
          runGatehouse(['users', 'set-password', `nobody${username}`, '--password', 'cli-other-password-1'], env),
          runGatehouse(['users', 'disable', `nobody${username}`], env),
        ]);
        assert.equal(listed.code, 0, listed.stderr);
        assert.deepEqual(tableRow(listed.stdout, username), {
          USERNAME: username,
          EMAIL: email,
          ROLES: 'user',
          STATUS: 'active',
          'LAST SIGN-IN (UTC)': 'never',
        });
        assert.equal(tableRow(listed.stdout, `a${username}`).ROLES, 'admin,user');

        assert.equal(json.code, 0, json.stderr);
        const users = JSON.parse(json.stdout) as { username: string; email: string; roles: string[]; status: string }[];
        assert.deepEqual(
          users.map((user) => [user.username, user.email, user.roles, user.status]),
          [[username, email, ['user'], 'active']],
        );

        assert.equal(limited.code, 0, limited.stderr);
        assert.equal(limited.stdout.trim().split('\n').length, 2, `a header and one user:\n${limited.stdout}`);
        assert.match(limited.stderr, /more match/, 'says that more users exist');

        for (const result of missing) {
          assert.equal(result.code, 3, `no such user: not found\n${result.stderr}`);
          assert.equal(oneLine(result.stderr), `gatehouse: no user named nobody${username}`);
        }

        const lastAdmin = await runGatehouse(['users', 'disable', `a${username}`], env);
        assert.equal(lastAdmin.code, 4, 'disabling the only active admin is a conflict');
        assert.match(oneLine(lastAdmin.stderr), /last active admin/);

        const reset = await runGatehouse(['users', 'set-password', username, '--password', 'cli-second-password-2'], env);
        assert.equal(reset.code, 0, reset.stderr);
        const t = await buildTestApp(target, {}, { database, keepDatabase: true });
        try {
          const signIn = (password: string) => t.app.inject({ method: 'POST', url: '/v1/sessions', payload: { username, password } });
          assert.equal((await signIn('cli-second-password-2')).statusCode, 201, 'the new password signs in');
          assert.equal((await signIn('cli-first-password-1')).statusCode, 401, 'the old one does not');
        } finally {
          await t.close();
        }

        const disabled = await runGatehouse(['users', 'disable', username], env);
        assert.equal(disabled.code, 0, disabled.stderr);
        const afterDisable = tableRow((await runGatehouse(['users', 'list'], env)).stdout, username);
        assert.equal(afterDisable.STATUS, 'disabled');
        assert.match(afterDisable['LAST SIGN-IN (UTC)'] ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/, 'the sign-in above is shown');
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
  after(() => killRemainingChildren());

  const COMMANDS = [
    ['serve'],
    ['migrate'],
    ['users', 'create'],
    ['users', 'list'],
    ['users', 'set-password'],
    ['users', 'disable'],
    ['keys', 'rotate'],
    ['relay'],
    ['import'],
  ];

  test('--help and help list every command and the exit codes, on standard output', async () => {
    for (const args of [['--help'], ['help'], ['-h']]) {
      const result = await runGatehouse(args, {});
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, '');
      for (const command of COMMANDS)
        assert.match(result.stdout, new RegExp(`^  ${command.join(' ')} `, 'm'), `${command.join(' ')} is listed`);
      assert.match(
        result.stdout,
        /^Exit codes:\n {2}0 {2}done\n {2}1 {2}failed.*\n {2}2 {2}wrong usage.*\n {2}3 {2}not found.*\n {2}4 {2}conflict.*\n {2}5 {2}unavailable/m,
      );
    }
  });

  test('every command has --help with its usage, options and the settings it reads', async () => {
    const settingNames = new Set(SETTINGS.map((setting) => setting.env));
    const expectations: Record<string, { options: string[]; settings: string[] }> = {
      serve: { options: [], settings: [...settingNames] },
      migrate: { options: [], settings: ['DATABASE_URL'] },
      'users create': {
        options: ['--username U', '--email E', '--password P', '--admin', '--display-name N'],
        settings: ['DATABASE_URL', 'GATEHOUSE_PASSWORD_HASH_PROFILE'],
      },
      'users list': { options: ['--limit N', '--search TEXT', '--status S', '--role R', '--json'], settings: ['DATABASE_URL'] },
      'users set-password': { options: ['--password P'], settings: ['DATABASE_URL', 'GATEHOUSE_PASSWORD_HASH_PROFILE'] },
      'users disable': { options: [], settings: ['DATABASE_URL'] },
      'keys rotate': { options: [], settings: ['DATABASE_URL', 'GATEHOUSE_SIGNING_KEY_ACTIVATION_SECONDS'] },
      relay: { options: [], settings: ['DATABASE_URL', 'AMQP_URL', 'AMQP_EXCHANGE'] },
      import: { options: ['--format F', '--from-origin-sqlite PATH'], settings: ['DATABASE_URL', 'AMQP_IMPORT_QUEUE'] },
    };
    for (const command of COMMANDS) {
      const name = command.join(' ');
      const help = await runGatehouse([...command, '--help'], {});
      assert.equal(help.code, 0, help.stderr);
      assert.ok(help.stdout.startsWith(`Usage: gatehouse ${name}`), help.stdout);
      const [optionsPart = '', rest = ''] = help.stdout.split('Options:\n')[1]?.split('Settings it reads') ?? [];
      const expected = expectations[name];
      assert.ok(expected, name);
      for (const option of [...expected.options, '-h, --help'])
        assert.match(optionsPart, new RegExp(`^  ${option} `, 'm'), `${name}: ${option}`);
      const listed = [...rest.matchAll(/^ {2}([A-Z][A-Z0-9_]+) /gm)].map((match) => match[1] as string);
      for (const setting of expected.settings) assert.ok(listed.includes(setting), `${name} --help lists ${setting}:\n${rest}`);
      for (const setting of listed) assert.ok(settingNames.has(setting), `${name} --help lists ${setting}, which is a real setting`);
      assert.match(rest, /Exit codes:/);
      if (name === 'serve') assert.deepEqual(listed, [...settingNames], 'serve reads every setting, in the README order');
      else assert.ok(listed.length < settingNames.size, `${name} lists only the settings it reads`);

      const same = await runGatehouse(['help', ...command], {});
      assert.equal(same.stdout, help.stdout, `gatehouse help ${name} is the same help`);
    }
    for (const group of ['users', 'keys']) {
      const help = await runGatehouse([group, '--help'], {});
      assert.equal(help.code, 0, help.stderr);
      for (const command of COMMANDS.filter(([first]) => first === group))
        assert.match(help.stdout, new RegExp(`^  ${command.join(' ')}`, 'm'));
    }
  });

  test('wrong usage exits 2 with one line naming the mistake and the help to read', async () => {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /^gatehouse: unknown command: frobnicate \(see 'gatehouse --help'\)$/],
      [['users'], /^gatehouse: users needs a command: create, list, set-password, disable \(see 'gatehouse users --help'\)$/],
      [['users', 'remove', 'bob'], /^gatehouse: unknown users command: remove \(see 'gatehouse users --help'\)$/],
      [['users', 'list', '--colour'], /^gatehouse: unknown option: --colour \(see 'gatehouse users list --help'\)$/],
      [['users', 'list', '--limit'], /^gatehouse: --limit needs a value/],
      [['users', 'list', '--limit', 'lots'], /^gatehouse: --limit must be a whole number from 1 to 10000/],
      [['users', 'list', '--status', 'asleep'], /^gatehouse: --status is one of active, disabled/],
      [['users', 'create', '--username', 'bob'], /^gatehouse: users create needs --email \(see 'gatehouse users create --help'\)$/],
      [['users', 'disable'], /^gatehouse: users disable needs a USERNAME/],
      [['migrate', 'now'], /^gatehouse: unexpected argument: now \(see 'gatehouse migrate --help'\)$/],
      [['import'], /^gatehouse: import needs a FILE or --from-origin-sqlite PATH/],
      [['relay'], /^gatehouse: relay needs AMQP_URL/],
    ];
    for (const [args, message] of cases) {
      // A database no command may reach: usage is checked before anything is opened (relay aside).
      const result = await runGatehouse(args, { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' });
      assert.equal(result.code, 2, `gatehouse ${args.join(' ')}: ${result.stderr}`);
      assert.match(oneLine(result.stderr), message);
      assert.equal(result.stdout, '');
    }
    const bare = await runGatehouse([], {});
    assert.equal(bare.code, 2, 'no command at all is wrong usage too');
    assert.match(bare.stderr, /^Usage: gatehouse <command>/m, 'and shows the commands');
  });

  test('a database that cannot be reached exits 5 with one line naming it, without its password', async () => {
    for (const args of [['migrate'], ['users', 'list'], ['users', 'disable', 'bob']]) {
      const result = await runGatehouse(args, { DATABASE_URL: 'postgres://postgres:hunter2-secret@127.0.0.1:1/gatehouse' });
      assert.equal(result.code, 5, `gatehouse ${args.join(' ')}: ${result.stderr}`);
      assert.match(oneLine(result.stderr), /^gatehouse: cannot reach postgres:\/\/127\.0\.0\.1:1\/gatehouse: .*ECONNREFUSED/);
      assert.ok(!result.stderr.includes('hunter2'), 'the password is not printed');
    }
  });

  test('a missing import file exits 3', async () => {
    const result = await runGatehouse(['import', '/nonexistent/users.ndjson'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' });
    assert.equal(result.code, 3, result.stderr);
    assert.equal(oneLine(result.stderr), 'gatehouse: no such file: /nonexistent/users.ndjson');
  });

  test('serve on a port in use exits 1 with one line, not a stack', async () => {
    const database = await createTestDatabase('sqlite');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const address = taken.address();
      assert.ok(address && typeof address !== 'string');
      const result = await runGatehouse(['serve'], {
        DATABASE_URL: database.url,
        GATEHOUSE_PASSWORD_HASH_PROFILE: 'test',
        GATEHOUSE_ADMIN_PASSWORD: 'port-admin-password-1',
        PORT: String(address.port),
        GATEHOUSE_LOG_LEVEL: 'silent',
      });
      assert.equal(result.code, 1, result.stderr);
      assert.match(oneLine(result.stderr), /^gatehouse: .*EADDRINUSE.*address already in use/);
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
      await database.drop();
    }
  });

  test('a bad PORT exits 1 and names PORT', async () => {
    const result = await runGatehouse(['serve'], { PORT: 'abc', DATABASE_URL: 'sqlite::memory:' });
    assert.equal(result.code, 1);
    assert.match(oneLine(result.stderr), /^gatehouse: invalid configuration: PORT="abc"/);
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

// ---- helpers ----------------------------------------------------------------------------------

/** The only line of an error output: one line, no stack trace. */
function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `one line:\n${stderr}`);
  return lines[0] as string;
}

function post(server: Server, path: string, body: unknown): Promise<Response> {
  return fetch(`${server.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** The row of a `users list` table whose USERNAME cell is the username, as header -> cell. */
function tableRow(stdout: string, username: string): Record<string, string> {
  const [header, ...rows] = stdout.split('\n').filter(Boolean);
  assert.ok(header, stdout);
  const columns = [...header.matchAll(/\S+(?: \S+)*/g)].map((match) => ({ name: match[0], start: match.index ?? 0 }));
  assert.deepEqual(
    columns.map((column) => column.name),
    ['USERNAME', 'EMAIL', 'ROLES', 'STATUS', 'LAST SIGN-IN (UTC)'],
  );
  const cells = (row: string) =>
    Object.fromEntries(columns.map((column, i) => [column.name, row.slice(column.start, columns[i + 1]?.start ?? row.length).trim()]));
  const row = rows.map(cells).find((one) => one.USERNAME === username);
  assert.ok(row, `${username} is a row of\n${stdout}`);
  return row;
}
