// What every fault test needs around the cluster harness: whether it can run here (PostgreSQL and
// nginx binaries, root to run PostgreSQL as its own user, Redis and RabbitMQ), a cluster of its own
// per test file, direct database checks, metrics and small HTTP helpers.
import { randomBytes } from 'node:crypto';
import { clusterUrl, down, up } from '../../scripts/cluster/cluster.js';
import { withClient } from '../../scripts/cluster/postgres.js';
import { AMQP_URL, checkServices, REDIS_URL } from '../../scripts/cluster/services.js';
import type { ClusterState, InstanceState } from '../../scripts/cluster/state.js';
import { findTools, isRoot } from '../../scripts/cluster/system.js';

const REQUIRED = process.env.CI === 'true';

/**
 * A skip reason when the cluster cannot run here, else false. Under CI=true anything missing
 * fails the suite instead (the harness installs missing packages itself only when run as root).
 */
export async function clusterSkip(): Promise<string | false> {
  const problems: string[] = [];
  const { missing } = findTools();
  if (missing.length > 0 && !isRoot()) problems.push(`missing Debian packages (${missing.join(', ')}) and not root to install them`);
  await checkServices(REDIS_URL, AMQP_URL).catch((error: Error) => problems.push(error.message));
  if (problems.length === 0) return false;
  if (REQUIRED) throw new Error(`the cluster fault tests need (CI): ${problems.join('; ')}`);
  process.stderr.write(`# cluster fault tests are SKIPPED: ${problems.join('; ')}\n`);
  return problems.join('; ');
}

export interface TestCluster {
  state: ClusterState;
  /** nginx's address: what clients use. */
  url: string;
  adminAuth: string;
  instanceUrl(instance: InstanceState): string;
  /** Stops the cluster and removes it; safe to call twice and after a failed start. */
  close(): Promise<void>;
}

const log = (line: string) => process.stderr.write(`# [cluster] ${line}\n`);

/** A cluster named for this test file and run, so parallel runs never meet. */
export async function startTestCluster(label: string): Promise<TestCluster> {
  const name = `t-${label}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const started = Date.now();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await down(name, log);
  };
  try {
    const state = await up({ name, log });
    log(`up in ${((Date.now() - started) / 1000).toFixed(1)} s at ${clusterUrl(state)}`);
    return {
      state,
      url: clusterUrl(state),
      adminAuth: `Basic ${Buffer.from(`${state.admin.username}:${state.admin.password}`).toString('base64')}`,
      instanceUrl: (instance) => `http://127.0.0.1:${instance.port}`,
      close,
    };
  } catch (error) {
    await close().catch(() => {});
    throw error;
  }
}

/** Usernames and ids present in the primary database under a prefix. */
export async function usersInPrimary(state: ClusterState, usernamePrefix: string): Promise<{ id: string; username: string }[]> {
  return withClient(state.postgres.primary.port, async (client) => {
    const { rows } = await client.query('select id, username from users where username like $1', [`${usernamePrefix}%`]);
    return rows as { id: string; username: string }[];
  });
}

/** One sample family from an instance's /metrics, summed by the given label. */
export async function metricByLabel(instanceUrl: string, name: string, label: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${instanceUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const values: Record<string, number> = {};
  const pattern = new RegExp(`^${name}\\{([^}]*)\\}\\s+(\\S+)`, 'gm');
  for (const match of text.matchAll(pattern)) {
    const value = new RegExp(`${label}="([^"]*)"`).exec(match[1] as string)?.[1];
    if (value !== undefined) values[value] = (values[value] ?? 0) + Number(match[2]);
  }
  return values;
}

/** Reads served per target ("primary", "replica-1") summed over every instance. */
export async function readsByTarget(cluster: TestCluster): Promise<Record<string, number>> {
  const total: Record<string, number> = {};
  for (const instance of cluster.state.instances) {
    const reads = await metricByLabel(cluster.instanceUrl(instance), 'gatehouse_db_reads_total', 'target');
    for (const [target, count] of Object.entries(reads)) total[target] = (total[target] ?? 0) + count;
  }
  return total;
}

/** A username prefix of this run (usernames: 3-32 of [a-z0-9._-]). */
export function runPrefix(label: string): string {
  return `${label}${randomBytes(3).toString('hex')}x`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
