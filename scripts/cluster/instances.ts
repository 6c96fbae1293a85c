// The three gatehouse instances: `node bin/gatehouse.cjs serve` each, with `npm start`'s memory
// settings, detached (they outlive the harness command that started them), logging to a file in the
// cluster's directory.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { startCommand } from '../start-command.js';
import { databaseUrl } from './postgres.js';
import { type ClusterState, type InstanceState, writeState } from './state.js';
import { isOurs, signal, waitForExit, waitUntil } from './system.js';

const REPO = new URL('../..', import.meta.url).pathname;
/** What every instance's command line contains, to recognise our processes by pid. */
const COMMAND_MARK = 'bin/gatehouse.cjs serve';

/** Settings for a load-tested cluster on one machine; the rest are gatehouse's defaults. */
export function instanceEnv(state: ClusterState, instance: InstanceState): Record<string, string> {
  const { primary, replica } = state.postgres;
  return {
    DATABASE_URL: databaseUrl(primary.port),
    DATABASE_REPLICA_URLS: databaseUrl(replica.port),
    REDIS_URL: state.redis.url,
    REDIS_KEY_PREFIX: state.redis.keyPrefix,
    AMQP_URL: state.amqp.url,
    AMQP_EXCHANGE: state.amqp.exchange,
    AMQP_IMPORT_QUEUE: state.amqp.importQueue,
    PORT: String(instance.port),
    HOST: '127.0.0.1',
    TRUST_PROXY: '127.0.0.1',
    GATEHOUSE_ADMIN_USERNAME: state.admin.username,
    GATEHOUSE_ADMIN_PASSWORD: state.admin.password,
    GATEHOUSE_LOG_LEVEL: 'warn',
    // Load tests send everything from one address, through nginx: the per-client limits would
    // measure themselves instead of the cluster.
    GATEHOUSE_RATE_LIMIT_PER_MINUTE: '1000000',
    GATEHOUSE_SIGNIN_RATE_LIMIT_PER_MINUTE: '1000000',
    GATEHOUSE_SIGNIN_FAILURES_PER_IP_PER_DAY: '100000000',
    // Cheap hashing (loopback only): the tests are about the cluster, not argon2's cost.
    GATEHOUSE_PASSWORD_HASH_PROFILE: 'test',
  };
}

/** The harness's environment without gatehouse settings of its own, so only instanceEnv applies. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(GATEHOUSE_|DATABASE_|AMQP_|REDIS_|PORT$|HOST$|TRUST_PROXY$|NODE_TEST_CONTEXT$|NODE_OPTIONS$)/.test(name)) continue;
    env[name] = value;
  }
  return env;
}

export function instanceBase(instance: InstanceState): string {
  return `http://127.0.0.1:${instance.port}`;
}

/** Starts the instance (appending to its log) and records its pid in `instance` and state.json, so `down` finds it. */
export function spawnInstance(state: ClusterState, instance: InstanceState): void {
  const log = openSync(instance.log, 'a');
  try {
    const start = startCommand();
    const child = spawn(process.execPath, [...start.nodeArgs, 'bin/gatehouse.cjs', 'serve'], {
      cwd: REPO,
      env: { ...baseEnv(), ...start.env, ...instanceEnv(state, instance) },
      detached: true,
      stdio: ['ignore', log, log],
    });
    child.on('error', () => {});
    child.unref();
    instance.pid = child.pid ?? null;
    writeState(state);
  } finally {
    closeSync(log);
  }
}

export function instanceAlive(instance: InstanceState): boolean {
  return isOurs(instance.pid, COMMAND_MARK);
}

/** Waits until GET /readyz answers 200 (database reachable, migrations applied). */
export async function waitReady(instance: InstanceState, timeoutMs = 60_000): Promise<void> {
  await waitUntil(
    `gatehouse-${instance.index} (port ${instance.port}) to be ready; see ${instance.log}`,
    async () => {
      if (!instanceAlive(instance)) throw new Error(`gatehouse-${instance.index} exited; see ${instance.log}`);
      const response = await fetch(`${instanceBase(instance)}/readyz`, { signal: AbortSignal.timeout(2_000) });
      return response.status === 200;
    },
    timeoutMs,
  ).catch(async (error) => {
    // waitUntil swallows check errors until its deadline; say why when the process is gone.
    if (!instanceAlive(instance)) throw new Error(`gatehouse-${instance.index} exited before it was ready; see ${instance.log}`);
    throw error;
  });
}

/**
 * SIGTERM, as an orchestrator stops it: it drains in-flight requests and exits. Returns whether it
 * exited within `timeoutMs` (after which it is killed).
 */
export async function stopInstance(instance: InstanceState, timeoutMs = 20_000): Promise<boolean> {
  const pid = instance.pid;
  if (!isOurs(pid, COMMAND_MARK)) return true;
  signal(pid, 'SIGTERM');
  const exited = await waitForExit(pid, COMMAND_MARK, timeoutMs);
  if (!exited) {
    signal(pid, 'SIGKILL');
    await waitForExit(pid, COMMAND_MARK, 5_000);
  }
  return exited;
}

/** kill -9: the instance dies mid-request, as on a crash or an OOM kill. */
export async function killInstance(instance: InstanceState): Promise<void> {
  const pid = instance.pid;
  if (!isOurs(pid, COMMAND_MARK)) return;
  signal(pid, 'SIGKILL');
  if (!(await waitForExit(pid, COMMAND_MARK, 5_000))) throw new Error(`gatehouse-${instance.index} survived SIGKILL`);
}
