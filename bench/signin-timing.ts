// Sign-in failure timing (issue "Defend sign-in"): the median time of the four failure cases
// must not tell them apart. Runs the real app with production argon2id parameters on a
// temporary database, sends interleaved sign-ins over HTTP and prints a Markdown table:
//   unknown user, wrong password, disabled user, throttled (a blocked username and address).
// Usage: npm run bench -- [--samples 300] [--database sqlite|postgres]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.js';
import { ensureFirstAdmin } from '../src/bootstrap.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/http/logger.js';
import { createServices, type Services } from '../src/services.js';
import { createTestDatabase } from '../test/helpers/databases.js';
import { argon2Parameters } from './lib/report.js';

const { values } = parseArgs({
  options: { samples: { type: 'string', default: '300' }, database: { type: 'string', default: 'sqlite' } },
});
const samples = Number(values.samples);
const target = values.database === 'postgres' ? 'postgres' : 'sqlite';
const USERS_PER_CASE = 10; // spreads failures so the per-username slow-down never starts
const PASSWORD = 'bench-password-long-enough';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
const database =
  target === 'postgres' ? await createTestDatabase('postgres') : { url: `sqlite:${join(dir, 'bench.db')}`, drop: async () => {} };
// Whatever fails, the server, the services and the database are closed and dropped.
let services: Services | undefined;
let app: FastifyInstance | undefined;
try {
  const config = loadConfig(
    {},
    {
      databaseUrl: database.url,
      port: 0,
      logLevel: 'silent',
      adminUsername: 'admin',
      adminPassword: 'bench-admin-password-1',
      rateLimitPerMinute: 0,
      signInRateLimitPerMinute: 10_000_000,
      trustProxy: '127.0.0.1',
      hashQueueMax: 10_000,
    },
  );
  const logger = createLogger(config);
  const live = await createServices(config, logger);
  services = live;
  await ensureFirstAdmin(live);
  app = await buildApp(live, logger);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  const admin = `Basic ${Buffer.from('admin:bench-admin-password-1').toString('base64')}`;
  async function apiCreate(username: string, disabled: boolean) {
    const response = await fetch(`${base}/v1/users`, {
      method: 'POST',
      headers: { authorization: admin, 'content-type': 'application/json' },
      body: JSON.stringify({ username, email: `${username}@example.com`, password: PASSWORD }),
    });
    const user = (await response.json()) as { id: string };
    if (disabled) await live.usersRepository.update(user.id, { status: 'disabled' });
  }

  const wrong: string[] = [];
  const disabled: string[] = [];
  for (let i = 0; i < USERS_PER_CASE; i++) {
    wrong.push(`wrong${i}`);
    disabled.push(`disabled${i}`);
    await apiCreate(`wrong${i}`, false);
    await apiCreate(`disabled${i}`, true);
  }
  await apiCreate('throttled', false);

  let addressCounter = 0;
  function freshAddress(): string {
    addressCounter += 1;
    return `10.${(addressCounter >> 16) & 255}.${(addressCounter >> 8) & 255}.${addressCounter & 255}`;
  }

  async function signIn(username: string, password: string, from: string): Promise<{ status: number; ms: number }> {
    const started = performance.now();
    const response = await fetch(`${base}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': from },
      body: JSON.stringify({ username, password }),
    });
    await response.arrayBuffer();
    return { status: response.status, ms: performance.now() - started };
  }

  // Block one (username, address) pair: its attempts are then refused without verifying.
  const blockedAddress = '192.0.2.1';
  for (let i = 0; i < config.signInFailuresPerUsernameAndIp; i++) await signIn('throttled', 'wrong-password-x', blockedAddress);

  type Case = 'unknown user' | 'wrong password' | 'disabled user' | 'throttled';
  const cases: Record<Case, (round: number) => Promise<{ status: number; ms: number }>> = {
    'unknown user': (round) => signIn(`nobody${round}`, PASSWORD, freshAddress()),
    'wrong password': (round) => signIn(wrong[round % USERS_PER_CASE] as string, 'not-the-password-1', freshAddress()),
    'disabled user': (round) => signIn(disabled[round % USERS_PER_CASE] as string, PASSWORD, freshAddress()),
    throttled: () => signIn('throttled', PASSWORD, blockedAddress),
  };
  const names = Object.keys(cases) as Case[];
  const times: Record<Case, number[]> = { 'unknown user': [], 'wrong password': [], 'disabled user': [], throttled: [] };
  const statuses: Record<Case, Set<number>> = {
    'unknown user': new Set(),
    'wrong password': new Set(),
    'disabled user': new Set(),
    throttled: new Set(),
  };

  // Warm up (JIT, connections), then interleave the cases in a new random order each round.
  for (let round = 0; round < 10; round++) for (const name of names) await cases[name](round + 100_000);
  for (let round = 0; round < samples; round++) {
    const order = [...names].sort(() => Math.random() - 0.5);
    for (const name of order) {
      const { status, ms } = await cases[name](round);
      times[name].push(ms);
      statuses[name].add(status);
    }
  }

  function quantile(sorted: number[], q: number): number {
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  }
  const rows = names.map((name) => {
    const sorted = [...times[name]].sort((a, b) => a - b);
    return {
      case: name,
      statuses: [...statuses[name]].join(','),
      median: quantile(sorted, 0.5),
      p90: quantile(sorted, 0.9),
      samples: sorted.length,
    };
  });
  const medians = rows.map((row) => row.median);
  const spread = Math.max(...medians) - Math.min(...medians);

  const lines = [
    `Sign-in failure timing, ${samples} interleaved samples per case, ${target}, argon2id ${argon2Parameters()}`,
    '',
    '| case | status | median ms | p90 ms |',
    '| --- | --- | --- | --- |',
    ...rows.map((row) => `| ${row.case} | ${row.statuses} | ${row.median.toFixed(2)} | ${row.p90.toFixed(2)} |`),
    '',
    `Largest difference between two medians: ${spread.toFixed(2)} ms (target: under 2 ms) — ${spread < 2 ? 'met' : 'MISSED'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  mkdirSync(new URL('./out/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./out/signin-timing.json', import.meta.url), JSON.stringify({ target, samples, rows, spreadMs: spread }, null, 2));
} finally {
  await app?.close();
  await services?.close();
  await database.drop();
  rmSync(dir, { recursive: true, force: true });
}
