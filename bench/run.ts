// The benchmark runner (issue 6): gatehouse against a bare Fastify route (the ceiling) and, for S2,
// the origin Flask app, all measured in one run and read as ratios, since these machines are shared
// and noisy. Prints a Markdown table and writes bench/out/run-<database>[-<scenarios>][-smoke].json.
// S5 and S7 (PostgreSQL only) run on a database of their own with --users users (1,000,000; 20,000
// in --smoke); --cpu-prof DIR makes each gatehouse the run starts write a V8 CPU profile there when
// it stops.
// Usage: npm run bench -- [S1 S2 S3 S4 S5 S6 S7 signin-timing] [--duration 10] [--connections 32]
//                         [--database sqlite|postgres] [--samples 300 (signin-timing)] [--smoke]
//                         [--users 1000000 (S5, S7)] [--cpu-prof DIR]
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createTestDatabase, type Target, type TestDatabase } from '../test/helpers/databases.js';
import { startRawRate } from './lib/argon2-rate.js';
import { cpuSplit, snapshot } from './lib/cpu-split.js';
import { type DeepSort, measurePagePair, type PagePair, seedUsers } from './lib/deep-page.js';
import { waitForHashesToFinish } from './lib/hash-drain.js';
import { type ImportFigures, productionHash, runImport } from './lib/import-rate.js';
import { type LoadFigures, type LoadOptions, runLoad } from './lib/load.js';
import { measurePaired } from './lib/paired.js';
import { peakRssBytes, resetPeakRss, type ServerProcess, stopAllChildren, stopServer } from './lib/processes.js';
import { type Argon2Rate, type Row, renderReport } from './lib/report.js';
import {
  ADMIN,
  basic,
  ORIGIN_ADMIN,
  originUnavailable,
  REPO,
  seedGatehouse,
  startCeiling,
  startGatehouse,
  startOrigin,
} from './lib/services.js';
import { measureSignInsInTurns, rawMean } from './lib/signin-turns.js';

const SCENARIOS = ['S1', 'S2', 'S3', 'S4', 'S6', 'S5', 'S7', 'signin-timing'] as const;
const MAIN_SCENARIOS: readonly Scenario[] = ['S1', 'S2', 'S3', 'S4', 'S6'];
const POSTGRES_ONLY: readonly Scenario[] = ['S5', 'S7'];
type Scenario = (typeof SCENARIOS)[number];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    duration: { type: 'string' },
    connections: { type: 'string' },
    database: { type: 'string', default: 'sqlite' },
    smoke: { type: 'boolean', default: false },
    samples: { type: 'string' },
    users: { type: 'string' },
    'cpu-prof': { type: 'string' },
  },
});
const smoke = values.smoke === true;
const durationSeconds = Number(values.duration ?? (smoke ? 2 : 10));
const connections = Number(values.connections ?? (smoke ? 4 : 32));
const target: Target = values.database === 'postgres' ? 'postgres' : 'sqlite';
if (values.database !== 'sqlite' && values.database !== 'postgres') throw new Error('--database must be sqlite or postgres');
if (!(durationSeconds >= 1 && durationSeconds <= 600)) throw new Error('--duration must be 1..600 seconds');
if (!(connections >= 1 && connections <= 1000)) throw new Error('--connections must be 1..1000');
if (values.samples !== undefined && !(Number(values.samples) >= 1 && Number(values.samples) <= 100_000))
  throw new Error('--samples must be 1..100000');
const users = Number(values.users ?? (smoke ? 20_000 : 1_000_000));
if (!(Number.isInteger(users) && users >= 1_000 && users <= 10_000_000)) throw new Error('--users must be 1000..10000000');
const cpuProfDir = values['cpu-prof'] === undefined ? null : resolve(values['cpu-prof']);
const chosen = new Set<Scenario>();
for (const name of positionals) {
  const scenario = SCENARIOS.find((each) => each.toLowerCase() === name.toLowerCase());
  if (!scenario) throw new Error(`unknown scenario ${name}; known: ${SCENARIOS.join(', ')}`);
  chosen.add(scenario);
}
const scenarios = chosen.size > 0 ? SCENARIOS.filter((each) => chosen.has(each)) : [...SCENARIOS];
const needsGatehouse = scenarios.some((each) => MAIN_SCENARIOS.includes(each));
const bigScenarios = scenarios.filter((each) => POSTGRES_ONLY.includes(each));

let database: TestDatabase | null = null;
let bigDatabase: TestDatabase | null = null;
let cleaned: Promise<void> | null = null;
function cleanUp(): Promise<void> {
  cleaned ??= (async () => {
    await stopAllChildren();
    for (const each of [database, bigDatabase])
      await each?.drop().catch((error) => process.stderr.write(`could not drop a bench database: ${String(error)}\n`));
  })();
  return cleaned;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanUp().finally(() => process.exit(130));
  });
}

/** Runs load against a server with its peak RSS reset first, and reads that peak after. */
async function measure(server: ServerProcess, load: () => Promise<LoadFigures>): Promise<LoadFigures & { peakRssBytes: number }> {
  resetPeakRss(server.pid);
  const figures = await load();
  return { ...figures, peakRssBytes: peakRssBytes(server.pid) };
}

const settings = (url: string, extra: Partial<LoadOptions> = {}): LoadOptions => ({ url, durationSeconds, connections, ...extra });
const rows: Row[] = [];
const notes: string[] = [];
const ceilingRuns: (LoadFigures & { peakRssBytes: number })[] = [];
let argon2Rate: Argon2Rate | null = null;
let originS2: (LoadFigures & { peakRssBytes: number }) | null = null;
let signinTiming: { ran: boolean; output: string } | null = null;
let seeded = null as { users: number; seconds: number } | null;
const deepPages: PagePair[] = [];
let importRun = null as ImportFigures | null; // set in runBigScenarios()
let importRssBytes = 0;
const failures: string[] = [];
const progress = (line: string) => process.stderr.write(`${line}\n`);

try {
  if (needsGatehouse) {
    // S1 and S2 are measured in turns with the ceiling (lib/paired.ts says why); the other scenarios'
    // column is read against the mean of those ceiling figures, or, when neither runs, against one
    // run of the ceiling before gatehouse starts.
    const ceilingServer = await startCeiling();
    const ceilingSide = { server: ceilingServer, load: settings(`${ceilingServer.url}/`) };
    const lastAgainstCeiling = scenarios.filter((each) => each === 'S1' || each === 'S2').at(-1);
    if (!lastAgainstCeiling) {
      ceilingRuns.push(await measure(ceilingServer, () => runLoad(ceilingSide.load)));
      await stopServer(ceilingServer.child);
    }

    database = await createTestDatabase(target);
    if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
    const gatehouse = await startGatehouse(database.url, {}, cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : []);
    const { accessToken } = await seedGatehouse(gatehouse.url);
    const s1 = settings(`${gatehouse.url}/v1/users/me`, { headers: { authorization: `Bearer ${accessToken}` } });
    const signIn = settings(`${gatehouse.url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'bench-member', password: 'bench-member-password-1' }),
    });
    let created = 0;
    const runTag = Date.now().toString(36);

    for (const scenario of scenarios) {
      if (scenario === 'S1' || scenario === 'S2') {
        const load =
          scenario === 'S1'
            ? s1
            : settings(`${gatehouse.url}/v1/users?limit=20`, { headers: { authorization: basic(ADMIN.username, ADMIN.password) } });
        const paired = await measurePaired({ server: gatehouse, load }, ceilingSide, durationSeconds);
        const what = scenario === 'S1' ? 'Bearer GET /v1/users/me' : 'Basic GET /v1/users?limit=20 (100 users)';
        rows.push({ scenario, what, ...paired.scenario, ceiling: paired.ceiling });
        ceilingRuns.push(paired.ceiling);
      }
      if (scenario === lastAgainstCeiling) {
        // The method's own noise, in this run: a second ceiling process measured the same way against
        // the first. Its share would be 100% on a quiet machine; how far it lands from 100% is how
        // far S1's and S2's shares can move without any change in code.
        const second = await startCeiling();
        const paired = await measurePaired({ server: second, load: settings(`${second.url}/`) }, ceilingSide, durationSeconds);
        await stopServer(second.child);
        rows.push({
          scenario: 'A/A',
          what: 'a second bare Fastify 5 GET /',
          ...paired.scenario,
          ceiling: paired.ceiling,
        });
        await stopServer(ceilingServer.child);
      }
      if (scenario === 'S3') {
        // S3 and the raw rate are measured in turns (lib/signin-turns.ts says why), the raw loops in a
        // child process with gatehouse's memory settings (lib/argon2-rate.ts says why).
        const raw = await startRawRate();
        try {
          resetPeakRss(gatehouse.pid);
          const turns = await measureSignInsInTurns(
            {
              load: async (seconds) => {
                const load = await runLoad({ ...signIn, durationSeconds: seconds });
                if (gatehouse.child.exitCode !== null || gatehouse.child.signalCode !== null) {
                  throw new Error(
                    `gatehouse exited during S3 (${gatehouse.child.signalCode ?? `code ${gatehouse.child.exitCode}`}); its last output:\n${gatehouse.output()}`,
                  );
                }
                return load;
              },
              drain: () => waitForHashesToFinish(gatehouse.url),
              raw: (seconds) => raw.measure(seconds),
              ...(existsSync('/proc/stat') ? { snapshot: () => snapshot(gatehouse.pid) } : {}),
            },
            durationSeconds,
          );
          rows.push({ scenario, what: 'POST /v1/sessions', ...turns.signIns, peakRssBytes: peakRssBytes(gatehouse.pid) });
          argon2Rate = {
            verifiesPerSecond: rawMean(turns.raw),
            lanes: turns.raw[0]?.lanes ?? 0,
            slices: turns.raw.map((slice) => slice.verifiesPerSecond),
            sliceSeconds: turns.sliceSeconds,
            drainMs: turns.drainMs,
            split: turns.intervals.length > 0 ? cpuSplit(gatehouse.pid, turns.intervals) : null,
          };
        } finally {
          await raw.stop();
        }
      }
      if (scenario === 'S4') {
        const figures = await measure(gatehouse, () =>
          runLoad(
            settings(`${gatehouse.url}/v1/users`, {
              method: 'POST',
              headers: { authorization: basic(ADMIN.username, ADMIN.password), 'content-type': 'application/json' },
              makeBody: () => {
                created += 1;
                const username = `load-${runTag}-${created}`;
                return JSON.stringify({ username, email: `${username}@example.com`, password: `load-password-${created}-long` });
              },
            }),
          ),
        );
        rows.push({ scenario, what: 'POST /v1/users (admin Basic, unique usernames)', ...figures });
      }
      if (scenario === 'S6') {
        resetPeakRss(gatehouse.pid);
        const [bearer, signIns] = await Promise.all([runLoad(s1), runLoad(signIn)]);
        rows.push({
          scenario,
          what: 'S1 while S3 saturates hashing (S1 figures)',
          ...bearer,
          peakRssBytes: peakRssBytes(gatehouse.pid),
          alongside: signIns,
        });
      }
    }
    await stopServer(gatehouse.child);

    if (scenarios.includes('S2') && !smoke) {
      const why = await originUnavailable(progress);
      if (why) notes.push(`Origin column skipped: ${why}.`);
      else {
        const origin = await startOrigin();
        try {
          originS2 = await measure(origin.server, () =>
            runLoad(settings(`${origin.server.url}/api/users`, { headers: { authorization: ORIGIN_ADMIN } })),
          );
        } finally {
          await stopServer(origin.server.child);
          origin.cleanup();
        }
      }
    } else if (scenarios.includes('S2')) notes.push('Origin column skipped: not run in --smoke (seeding it takes ~16 s).');
  }

  if (bigScenarios.length > 0 && target !== 'postgres')
    notes.push(`${bigScenarios.join(' and ')} skipped: PostgreSQL only (run with --database postgres).`);
  else if (bigScenarios.length > 0) await runBigScenarios();

  if (scenarios.includes('signin-timing')) signinTiming = await runSigninTiming(Number(values.samples ?? (smoke ? 12 : 300)));
} finally {
  await cleanUp();
}

/** S5 and S7 on one database of their own: S5 seeds `users` users, S7 imports `users` more. */
async function runBigScenarios(): Promise<void> {
  bigDatabase = await createTestDatabase('postgres');
  const env: Record<string, string> = {
    GATEHOUSE_IMPORT_WORKER_ENABLED: scenarios.includes('S7') ? 'true' : 'false',
    // S5 measures the database's seek to a deep page: with the user list cache on, both pages would
    // come from memory after the first request of each 500 ms.
    GATEHOUSE_USER_LIST_CACHE_MS: '0',
  };
  // Node refuses --cpu-prof in NODE_OPTIONS: it goes on the command line.
  if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
  const gatehouse = await startGatehouse(bigDatabase.url, env, cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : []);
  try {
    const session = (await (
      await fetch(`${gatehouse.url}/v1/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(ADMIN),
      })
    ).json()) as { access_token?: string };
    if (!session.access_token) throw new Error('the admin could not sign in');
    // A Bearer token, so that the listing is measured and not a password hash per request.
    const bearer = `Bearer ${session.access_token}`;
    const passwordHash = await productionHash('imported-password-long-enough');
    if (scenarios.includes('S5')) {
      seeded = await seedUsers(bigDatabase.url, users, passwordHash, progress);
      const offset = Math.floor(users * 0.9);
      const sorts: DeepSort[] = ['created_at', 'username', '-last_login_at'];
      for (const sort of sorts)
        deepPages.push(await measurePagePair(gatehouse, bearer, bigDatabase.url, sort, offset, durationSeconds, settings));
    }
    if (scenarios.includes('S7')) {
      resetPeakRss(gatehouse.pid);
      importRun = await runImport(gatehouse.url, bearer, users, passwordHash, progress);
      importRssBytes = peakRssBytes(gatehouse.pid);
    }
  } finally {
    await stopServer(gatehouse.child, 30_000); // time to write a CPU profile
  }
}

function runSigninTiming(samples: number): Promise<{ ran: boolean; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'bench/signin-timing.ts', '--samples', String(samples), '--database', target],
      {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10 * 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ ran: code === 0 && output.includes('Largest difference'), output: output.trim() });
    });
  });
}

const report = renderReport({
  target,
  durationSeconds,
  connections,
  smoke,
  ceilingRuns,
  rows,
  argon2Rate,
  originS2,
  notes,
  big: bigScenarios.length > 0 ? { users, seeded, deepPages, importRun, importRssBytes } : null,
});
if (needsGatehouse || bigScenarios.length > 0) process.stdout.write(`${report.markdown}\n`);
if (signinTiming) process.stdout.write(`\n${signinTiming.output}\n`);
mkdirSync(new URL('./out/', import.meta.url), { recursive: true });
const json = { ...report.json, signinTiming: signinTiming && { ran: signinTiming.ran } };
// A run of chosen scenarios gets a file of its own, so that it does not overwrite a full run's.
const chosenPart = chosen.size > 0 ? `-${scenarios.join('-').toLowerCase()}` : '';
writeFileSync(
  new URL(`./out/run-${target}${chosenPart}${smoke ? '-smoke' : ''}.json`, import.meta.url),
  `${JSON.stringify(json, null, 2)}\n`,
);

if (needsGatehouse && !(ceilingRuns.length > 0 && ceilingRuns.every((run) => run.successesPerSecond > 0)))
  failures.push('the ceiling served nothing');
const aa = rows.find((row) => row.scenario === 'A/A');
if (aa && !(aa.successesPerSecond > 0 && (aa.ceiling?.successesPerSecond ?? 0) > 0)) failures.push('the A/A ceilings served nothing');
for (const scenario of scenarios) {
  if (scenario === 'signin-timing') {
    if (!signinTiming?.ran) failures.push('signin-timing did not run to its end');
    continue;
  }
  if (scenario === 'S5' && target === 'postgres') {
    if (deepPages.length === 0 || deepPages.some((pair) => pair.first.successesPerSecond <= 0 || pair.deep.successesPerSecond <= 0))
      failures.push('S5 did not report 2xx responses for every page');
    continue;
  }
  if (scenario === 'S7' && target === 'postgres') {
    if (importRun?.status !== 'completed' || importRun.created !== users)
      failures.push(`S7 did not import every user (${importRun ? `${importRun.status}, ${importRun.created} created` : 'no job'})`);
    continue;
  }
  if (POSTGRES_ONLY.includes(scenario)) continue;
  const row = rows.find((each) => each.scenario === scenario);
  if (!row || row.successesPerSecond <= 0) failures.push(`${scenario} did not report any 2xx response`);
}
if (failures.length > 0) {
  process.stderr.write(`bench failed: ${failures.join('; ')}\n`);
  process.exitCode = 1;
}
