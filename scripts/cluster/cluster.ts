// up, down and status of a whole cluster on one machine: a PostgreSQL primary and its streaming
// replica, three gatehouse instances on them (sharing the machine's Redis and RabbitMQ under names
// of their own), and nginx in front. Used by the CLI (cli.ts) and by the fault tests alike.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { instanceAlive, instanceBase, spawnInstance, stopInstance, waitReady } from './instances.js';
import { nginxLayout, nginxPid, startNginx, testNginxConfig, writeNginxConfig } from './nginx.js';
import { createPrimary, createReplica, nodePid, nodeStatus, stopNode } from './postgres.js';
import { AMQP_URL, checkServices, deleteAmqpObjects, deleteRedisKeys, REDIS_URL } from './services.js';
import { type ClusterState, clusterDir, readState, validateName, writeState } from './state.js';
import { ensureTools, freePorts, isOurs, signal, waitForExit, waitUntil } from './system.js';

export type Log = (line: string) => void;

/** The per-client edge rate of a harness cluster: high, since load tests come from one address. */
export const LOAD_TEST_EDGE_RATE = 100_000;

export interface UpOptions {
  name: string;
  edgeRatePerSecond?: number;
  log?: Log;
}

const NGINX_MASTER = 'nginx: master';

/** The URL clients use: nginx. */
export function clusterUrl(state: ClusterState): string {
  return `http://127.0.0.1:${state.nginx.port}`;
}

function anythingRunning(state: ClusterState): boolean {
  return (
    state.instances.some(instanceAlive) ||
    isOurs(nginxPid(state.nginx), NGINX_MASTER) ||
    nodePid(state.postgres.primary) !== null ||
    nodePid(state.postgres.replica) !== null
  );
}

export async function up(options: UpOptions): Promise<ClusterState> {
  const name = validateName(options.name);
  const log = options.log ?? (() => {});
  const existing = readState(name);
  if (existing && anythingRunning(existing)) {
    throw new Error(`cluster "${name}" is already running (${existing.dir}); \`npm run cluster -- down --name ${name}\` stops it`);
  }
  if (existsSync(clusterDir(name))) await down(name, log);

  const tools = await ensureTools(log);
  await checkServices(REDIS_URL, AMQP_URL);
  const dir = clusterDir(name);
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const [primaryPort, replicaPort, nginxPort, ...instancePorts] = (await freePorts(6)) as [number, number, number, ...number[]];
  const layout = nginxLayout(dir);
  const state: ClusterState = {
    name,
    dir,
    createdAt: new Date().toISOString(),
    admin: { username: 'admin', password: randomBytes(18).toString('base64url') },
    tools,
    postgres: {
      primary: { role: 'primary', port: primaryPort, dataDir: join(dir, 'pg', 'primary'), log: join(dir, 'pg', 'primary.log') },
      replica: { role: 'replica', port: replicaPort, dataDir: join(dir, 'pg', 'replica'), log: join(dir, 'pg', 'replica.log') },
    },
    instances: instancePorts.map((port, i) => ({ index: i + 1, port, pid: null, log: join(dir, 'logs', `gatehouse-${i + 1}.log`) })),
    nginx: { port: nginxPort, ...layout },
    edgeRatePerSecond: options.edgeRatePerSecond ?? LOAD_TEST_EDGE_RATE,
    redis: { url: REDIS_URL, keyPrefix: `gatehouse-cluster:${name}:` },
    amqp: { url: AMQP_URL, exchange: `gatehouse.cluster.${name}.events`, importQueue: `gatehouse.cluster.${name}.imports` },
  };
  writeState(state);

  try {
    log(`postgres: primary on ${primaryPort}`);
    await createPrimary(state);
    log(`postgres: replica on ${replicaPort} (pg_basebackup, streaming)`);
    await createReplica(state);

    writeNginxConfig(layout, {
      upstreamPorts: state.instances.map((instance) => instance.port),
      listenPort: nginxPort,
      ratePerSecond: state.edgeRatePerSecond,
    });
    const check = await testNginxConfig(tools.nginx, layout);
    if (!check.ok) throw new Error(`nginx -t rejected the rendered config:\n${check.output}`);

    // The first instance migrates the empty database and creates the admin alone; the other two
    // then start on a ready schema (the migration lock would also serialise them, but a first
    // admin created by three processes at once is a race this avoids).
    const [first, ...others] = state.instances as [ClusterState['instances'][number], ...ClusterState['instances']];
    log(`gatehouse-1 on ${first.port} (migrates the database)`);
    spawnInstance(state, first);
    await waitReady(first);
    for (const instance of others) {
      log(`gatehouse-${instance.index} on ${instance.port}`);
      spawnInstance(state, instance);
    }
    await Promise.all(others.map((instance) => waitReady(instance)));

    log(`nginx on ${nginxPort}`);
    await startNginx(tools.nginx, layout);
    await waitUntil(
      'nginx to answer',
      async () => (await fetch(`${clusterUrl(state)}/readyz`, { signal: AbortSignal.timeout(2_000) })).status === 200,
      15_000,
    );
    return state;
  } catch (error) {
    log(`up failed: ${error instanceof Error ? error.message : String(error)}`);
    // down removes the logs: show their ends first.
    for (const file of [...state.instances.map((instance) => instance.log), state.nginx.errorLog]) {
      if (!existsSync(file)) continue;
      const tail = readFileSync(file, 'utf8').trimEnd().split('\n').slice(-15);
      if (tail.join('') !== '') log(`last lines of ${file}:\n    ${tail.join('\n    ')}`);
    }
    log('stopping what was started');
    await down(name, log);
    throw error;
  }
}

/** Stops every component that is still running, deletes the cluster's Redis keys, exchange and
 * queue, and removes its directory. Works on what a crashed `up` left: each step is best effort. */
export async function down(name: string, log: Log = () => {}): Promise<void> {
  const state = readState(name);
  const dir = clusterDir(name);
  if (!state) {
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    return;
  }
  const problems: string[] = [];
  const attempt = async (what: string, work: () => Promise<unknown>) => {
    try {
      await work();
    } catch (error) {
      problems.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  await attempt('instances', async () => {
    const running = state.instances.filter(instanceAlive);
    if (running.length > 0) log(`stopping ${running.map((instance) => `gatehouse-${instance.index}`).join(', ')} (SIGTERM)`);
    await Promise.all(running.map((instance) => stopInstance(instance)));
  });
  await attempt('nginx', async () => {
    const pid = nginxPid(state.nginx);
    if (!isOurs(pid, NGINX_MASTER)) return;
    log('stopping nginx (quit)');
    signal(pid, 'SIGQUIT');
    if (!(await waitForExit(pid, NGINX_MASTER, 10_000))) {
      signal(pid, 'SIGTERM');
      await waitForExit(pid, NGINX_MASTER, 5_000);
    }
  });
  for (const node of [state.postgres.replica, state.postgres.primary]) {
    await attempt(`postgres ${node.role}`, async () => {
      if (nodePid(node) === null) return;
      log(`stopping postgres ${node.role} (pg_ctl stop -m fast)`);
      await stopNode(state, node).catch(async (error) => {
        const pid = nodePid(node);
        if (isOurs(pid, 'postgres')) {
          signal(pid, 'SIGQUIT');
          await waitForExit(pid, 'postgres', 10_000);
        }
        throw error;
      });
    });
  }
  await attempt('redis keys', async () => {
    const deleted = await deleteRedisKeys(state.redis.url, state.redis.keyPrefix);
    log(`deleted ${deleted} Redis keys under ${state.redis.keyPrefix}`);
  });
  await attempt('rabbitmq', async () => {
    await deleteAmqpObjects(state.amqp.url, state.amqp.exchange, state.amqp.importQueue);
    log(`deleted the exchange ${state.amqp.exchange} and the queue ${state.amqp.importQueue}`);
  });
  if (anythingRunning(state)) {
    problems.push(`something still runs; ${dir} is kept for another \`down\``);
  } else {
    rmSync(dir, { recursive: true, force: true });
    log(`removed ${dir}`);
  }
  if (problems.length > 0) throw new Error(`down of cluster "${name}" was incomplete:\n  ${problems.join('\n  ')}`);
}

export interface ComponentStatus {
  name: string;
  port: number;
  pid: number | null;
  answers: boolean;
  detail: string;
}

/** Sums of gatehouse_db_reads_total by target, from a Prometheus text page. */
export function readsByTarget(metrics: string): Record<string, number> {
  const reads: Record<string, number> = {};
  for (const match of metrics.matchAll(/^gatehouse_db_reads_total\{[^}]*target="([^"]+)"[^}]*\}\s+(\S+)/gm)) {
    const target = match[1] as string;
    reads[target] = (reads[target] ?? 0) + Number(match[2]);
  }
  return reads;
}

async function httpStatus(url: string): Promise<number | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return null;
  }
}

export async function status(name: string): Promise<{ state: ClusterState; components: ComponentStatus[] } | null> {
  const state = readState(name);
  if (!state) return null;
  const components: ComponentStatus[] = [];
  for (const node of [state.postgres.primary, state.postgres.replica]) {
    const pid = nodePid(node);
    const found = await nodeStatus(node);
    const lag = found.replayLagSeconds;
    const detail = !found.answers
      ? `not answering (${found.error ?? 'down'}); log ${node.log}`
      : found.inRecovery
        ? `standby, last replayed commit ${lag == null ? 'none yet' : `${lag.toFixed(1)} s ago`}; log ${node.log}`
        : `primary; log ${node.log}`;
    components.push({ name: `postgres ${node.role}`, port: node.port, pid, answers: found.answers, detail });
  }
  for (const instance of state.instances) {
    const ready = await httpStatus(`${instanceBase(instance)}/readyz`);
    let reads = 'no read metrics';
    try {
      const metrics = await (await fetch(`${instanceBase(instance)}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
      const byTarget = readsByTarget(metrics);
      if (Object.keys(byTarget).length > 0) {
        reads = `reads: ${Object.entries(byTarget)
          .map(([target, count]) => `${target}=${count}`)
          .join(', ')}`;
      }
    } catch {
      reads = 'metrics unavailable';
    }
    components.push({
      name: `gatehouse-${instance.index}`,
      port: instance.port,
      pid: instanceAlive(instance) ? instance.pid : null,
      answers: ready === 200,
      detail: `readyz ${ready ?? 'no answer'}; ${reads}; log ${instance.log}`,
    });
  }
  const nginxPidNow = nginxPid(state.nginx);
  const health = await httpStatus(`${clusterUrl(state)}/readyz`);
  components.push({
    name: 'nginx',
    port: state.nginx.port,
    pid: isOurs(nginxPidNow, NGINX_MASTER) ? nginxPidNow : null,
    answers: health === 200,
    detail: `readyz through nginx ${health ?? 'no answer'}; config ${state.nginx.conf}; logs ${state.nginx.accessLog}, ${state.nginx.errorLog}`,
  });
  return { state, components };
}
