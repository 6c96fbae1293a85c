// Which databases the suite runs on: SQLite always; PostgreSQL at TEST_DATABASE_URL (default the
// local server). Each test app gets its own database (a temporary SQLite file, or a PostgreSQL
// database created for it and dropped after). In CI (CI=true) PostgreSQL is required: a missing
// server fails the run. Elsewhere its tests are skipped, and the run says so.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export type Target = 'sqlite' | 'postgres';

export const POSTGRES_ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REQUIRED = process.env.CI === 'true' || process.env.TEST_REQUIRE_POSTGRES === 'true';

let postgresAvailable: Promise<boolean> | null = null;

async function probePostgres(): Promise<boolean> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch (error) {
    if (REQUIRED) throw new Error(`PostgreSQL is required here (CI) but ${POSTGRES_ADMIN_URL} does not answer: ${String(error)}`);
    process.stderr.write(`# PostgreSQL at ${POSTGRES_ADMIN_URL} does not answer: its tests are SKIPPED\n`);
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** The targets to run on, with a skip reason for the ones that are unavailable. */
export async function targets(): Promise<{ target: Target; skip: string | false }[]> {
  postgresAvailable ??= probePostgres();
  const postgres = await postgresAvailable;
  return [
    { target: 'sqlite', skip: false },
    { target: 'postgres', skip: postgres ? false : `PostgreSQL at ${POSTGRES_ADMIN_URL} is not reachable` },
  ];
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(target: Target): Promise<TestDatabase> {
  if (target === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
    return { url: `sqlite:${join(dir, 'test.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `gatehouse_test_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}
