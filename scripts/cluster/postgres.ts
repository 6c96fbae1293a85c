// The cluster's PostgreSQL: a primary made with initdb and a streaming replica made from it with
// pg_basebackup, both in the cluster's directory (owned by the postgres user, which the servers
// run as), on spare loopback ports.
import { chownSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import type { ClusterState, PostgresNode } from './state.js';
import { isRoot, runChecked } from './system.js';

export const DATABASE = 'gatehouse';

export function databaseUrl(port: number, database = DATABASE): string {
  return `postgres://postgres@127.0.0.1:${port}/${database}`;
}

/** A directory the postgres user owns (as root); the server refuses data it does not own. */
async function postgresOwnedDir(path: string): Promise<void> {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  if (!isRoot()) return;
  const uid = Number((await runChecked('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await runChecked('id', ['-g', 'postgres'])).stdout.trim());
  chownSync(path, uid, gid);
}

export function postgresDir(state: ClusterState): string {
  return join(state.dir, 'pg');
}

function serverSettings(state: ClusterState, port: number): string {
  return [
    '',
    '# set by the gatehouse cluster harness',
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${postgresDir(state)}'`,
    'wal_level = replica',
    'max_wal_senders = 5',
    // Enough WAL kept for a replica that was stopped for a while to catch up without a slot.
    "wal_keep_size = '256MB'",
    'hot_standby = on',
    'hot_standby_feedback = on',
    "shared_buffers = '64MB'",
    '',
  ].join('\n');
}

function pgCtl(state: ClusterState): string {
  return join(state.tools.postgresBin, 'pg_ctl');
}

export async function startNode(state: ClusterState, node: PostgresNode): Promise<void> {
  await runChecked(pgCtl(state), ['-D', node.dataDir, '-l', node.log, '-w', '-t', '60', 'start'], { asPostgres: true });
}

/** Stops a server (fast: sessions are ended, the shutdown checkpoint is written). No-op when it is not running. */
export async function stopNode(state: ClusterState, node: PostgresNode): Promise<void> {
  if (nodePid(node) === null) return;
  await runChecked(pgCtl(state), ['-D', node.dataDir, '-m', 'fast', '-w', '-t', '60', 'stop'], { asPostgres: true });
}

/** The postmaster's pid from its pid file, or null when the server is not running. */
export function nodePid(node: PostgresNode): number | null {
  const file = join(node.dataDir, 'postmaster.pid');
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

export async function withClient<T>(port: number, work: (client: pg.Client) => Promise<T>, database = DATABASE): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl(port, database), connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** initdb, settings, start, and the gatehouse database (empty: the first instance migrates it). */
export async function createPrimary(state: ClusterState): Promise<void> {
  const node = state.postgres.primary;
  await postgresOwnedDir(postgresDir(state));
  await runChecked(
    join(state.tools.postgresBin, 'initdb'),
    ['-D', node.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
    { asPostgres: true },
  );
  // initdb's pg_hba.conf already trusts local and 127.0.0.1 connections, replication included.
  await appendFile(join(node.dataDir, 'postgresql.conf'), serverSettings(state, node.port));
  await startNode(state, node);
  await withClient(node.port, (client) => client.query(`create database ${DATABASE}`), 'postgres');
}

/**
 * A hot standby streaming from the primary: pg_basebackup -R writes standby.signal and
 * primary_conninfo; its own port and socket settings go after the primary's copied ones.
 */
export async function createReplica(state: ClusterState): Promise<void> {
  const { primary, replica } = state.postgres;
  await runChecked(
    join(state.tools.postgresBin, 'pg_basebackup'),
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(primary.port),
      '-U',
      'postgres',
      '-D',
      replica.dataDir,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
      '--no-sync',
    ],
    { asPostgres: true },
  );
  await appendFile(join(replica.dataDir, 'postgresql.conf'), serverSettings(state, replica.port));
  await startNode(state, replica);
  const inRecovery = await withClient(replica.port, async (client) => (await client.query('select pg_is_in_recovery() as r')).rows[0]?.r);
  if (inRecovery !== true) throw new Error('the replica started but is not in recovery (not a standby)');
}

/**
 * Delays the replica's replay of every commit by `seconds` (recovery_min_apply_delay), as a
 * replica that lags does; 0 removes the delay. A reload applies it.
 */
export async function setReplayDelay(state: ClusterState, seconds: number): Promise<void> {
  await withClient(state.postgres.replica.port, async (client) => {
    await client.query(`alter system set recovery_min_apply_delay = '${Math.trunc(seconds)}s'`);
    await client.query('select pg_reload_conf()');
  });
}

export interface NodeStatus {
  answers: boolean;
  inRecovery?: boolean;
  /** On the replica: seconds since the last replayed commit (grows when the primary is idle). */
  replayLagSeconds?: number | null;
  error?: string;
}

export async function nodeStatus(node: PostgresNode): Promise<NodeStatus> {
  try {
    return await withClient(node.port, async (client) => {
      const { rows } = await client.query(
        'select pg_is_in_recovery() as in_recovery, extract(epoch from now() - pg_last_xact_replay_timestamp())::float8 as lag',
      );
      const row = rows[0] as { in_recovery: boolean; lag: number | null };
      return { answers: true, inRecovery: row.in_recovery, ...(row.in_recovery ? { replayLagSeconds: row.lag } : {}) };
    });
  } catch (error) {
    return { answers: false, error: error instanceof Error ? error.message : String(error) };
  }
}
