// deploy/postgres, run for real with the machine's PostgreSQL binaries (as the postgres user), the way
// the postgres image runs them: the init script against a new primary, then the replica entrypoint.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { compose, DEPLOY, freePort, run } from './helpers/deploy.js';

const PG_BIN = ['17', '16', '15'].map((version) => `/usr/lib/postgresql/${version}/bin`).find((bin) => existsSync(`${bin}/initdb`));
const pgMissing = !PG_BIN
  ? 'no PostgreSQL server binaries in /usr/lib/postgresql/*/bin'
  : process.getuid?.() !== 0
    ? 'not root (the servers run as the postgres user through runuser)'
    : false;
if (pgMissing && process.env.CI === 'true') throw new Error(`the deploy/postgres check needs PostgreSQL here (CI): ${pgMissing}`);
if (pgMissing) process.stderr.write(`# deploy/postgres scripts are not run: ${pgMissing}; SKIPPED\n`);

describe('deploy/postgres scripts', { skip: pgMissing }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-deploy-pg-'));
  const replication = { REPLICATION_USER: 'replicator', REPLICATION_PASSWORD: 'replication-test-pw', REPLICATION_SLOT: 'replica_1' };
  const asPostgres = (command: string, commandArgs: string[], env: Record<string, string> = {}) =>
    run('runuser', [
      '-u',
      'postgres',
      '--',
      'env',
      `PATH=${PG_BIN}:${process.env.PATH}`,
      ...Object.entries(env).map(([name, value]) => `${name}=${value}`),
      command,
      ...commandArgs,
    ]);
  const clients: pg.Client[] = [];
  const connect = async (port: number) => {
    const client = new pg.Client({ host: dir, port, user: 'gatehouse', database: 'gatehouse' });
    clients.push(client);
    await client.connect();
    return client;
  };

  after(async () => {
    for (const client of clients) await client.end().catch(() => {});
    for (const data of ['replica', 'primary']) {
      if (existsSync(join(dir, data, 'postmaster.pid')))
        await asPostgres('pg_ctl', ['-D', join(dir, data), '-m', 'immediate', 'stop']).catch(() => {});
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('the primary init script and the replica entrypoint make a streaming hot standby', { timeout: 120_000 }, async () => {
    const { stdout: ids } = await run('id', ['-u', 'postgres']);
    const { stdout: gids } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(ids), Number(gids));
    const [primaryPort, replicaPort] = [await freePort(), await freePort()];
    const primary = join(dir, 'primary');

    // What the image does on first start: initdb as POSTGRES_USER, password auth over the network.
    writeFileSync(join(dir, 'pwfile'), 'primary-test-pw\n');
    chownSync(join(dir, 'pwfile'), Number(ids), Number(gids));
    await asPostgres('initdb', ['--username', 'gatehouse', '--pwfile', join(dir, 'pwfile'), '--pgdata', primary]);
    // Only what the init script adds may let a replication connection in.
    const hba = readFileSync(join(primary, 'pg_hba.conf'), 'utf8')
      .split('\n')
      .filter((line) => !/^host\s+replication\s/.test(line));
    writeFileSync(join(primary, 'pg_hba.conf'), `${hba.join('\n')}\nhost all all all scram-sha-256\n`);
    const command = compose.services['postgres-primary'].command as string[];
    await asPostgres('pg_ctl', [
      '-D',
      primary,
      '-l',
      join(dir, 'primary.log'),
      '-w',
      'start',
      '-o',
      `-p ${primaryPort} -k ${dir} -c listen_addresses=127.0.0.1 ${command.slice(1).join(' ')}`,
    ]);
    await asPostgres('psql', [
      '-h',
      dir,
      '-p',
      String(primaryPort),
      '-U',
      'gatehouse',
      '-d',
      'postgres',
      '-c',
      'CREATE DATABASE gatehouse',
    ]);
    await asPostgres('bash', [join(DEPLOY, 'postgres/primary-init.sh')], {
      PGHOST: dir,
      PGPORT: String(primaryPort),
      PGDATA: primary,
      POSTGRES_USER: 'gatehouse',
      POSTGRES_DB: 'gatehouse',
      ...replication,
    });
    await asPostgres('pg_ctl', ['-D', primary, 'reload']);

    const replicaArgs = compose.services['postgres-replica'].command as string[];
    const replica = spawn(
      'runuser',
      [
        '-u',
        'postgres',
        '--',
        'env',
        `PATH=${PG_BIN}:${process.env.PATH}`,
        `PGDATA=${join(dir, 'replica')}`,
        'PRIMARY_HOST=127.0.0.1',
        `PRIMARY_PORT=${primaryPort}`,
        ...Object.entries(replication).map(([name, value]) => `${name}=${value}`),
        'bash',
        join(DEPLOY, 'postgres/replica-entrypoint.sh'),
        '-p',
        String(replicaPort),
        '-k',
        dir,
        '-c',
        'listen_addresses=127.0.0.1',
        ...replicaArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    replica.stdout.on('data', (chunk) => {
      log += chunk;
    });
    replica.stderr.on('data', (chunk) => {
      log += chunk;
    });
    const deadline = Date.now() + 60_000;
    while (
      !(await asPostgres('pg_isready', ['-q', '-h', dir, '-p', String(replicaPort), '-U', 'gatehouse']).then(
        () => true,
        () => false,
      ))
    ) {
      assert.equal(replica.exitCode, null, `the replica exited:\n${log}`);
      assert.ok(Date.now() < deadline, `the replica never accepted connections:\n${log}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }

    const onPrimary = await connect(primaryPort);
    const onReplica = await connect(replicaPort);
    assert.equal((await onReplica.query('SELECT pg_is_in_recovery() AS standby')).rows[0].standby, true);
    await onPrimary.query('CREATE TABLE deploy_probe (value int); INSERT INTO deploy_probe VALUES (42)');
    let seen: unknown;
    for (const until = Date.now() + 15_000; seen !== 42 && Date.now() < until; ) {
      seen = await onReplica.query('SELECT value FROM deploy_probe').then(
        (result) => result.rows[0]?.value,
        () => undefined,
      );
      if (seen !== 42) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(seen, 42, 'a write on the primary reaches the replica');
    const streaming = await onPrimary.query(
      'SELECT s.slot_name, s.active, r.usename FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid',
    );
    assert.deepEqual(streaming.rows, [{ slot_name: 'replica_1', active: true, usename: 'replicator' }]);
  });
});
