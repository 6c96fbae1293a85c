// Where a cluster lives: one directory per name under the system's temp dir, and state.json in it,
// written as each component starts so that `down` can stop whatever a crashed `up` left behind.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_NAME = 'dev';

export interface PostgresNode {
  role: 'primary' | 'replica';
  port: number;
  dataDir: string;
  log: string;
}

export interface InstanceState {
  /** 1, 2 or 3, as in the nginx config's gatehouse-1..3. */
  index: number;
  port: number;
  pid: number | null;
  log: string;
}

export interface ClusterState {
  name: string;
  dir: string;
  createdAt: string;
  admin: { username: string; password: string };
  tools: { postgresBin: string; nginx: string };
  postgres: { primary: PostgresNode; replica: PostgresNode };
  instances: InstanceState[];
  nginx: { port: number; prefix: string; conf: string; pidFile: string; accessLog: string; errorLog: string };
  /** nginx's per-client edge rate, raised from the shipped value for load tests. */
  edgeRatePerSecond: number;
  redis: { url: string; keyPrefix: string };
  amqp: { url: string; exchange: string; importQueue: string };
}

export function validateName(name: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(name)) throw new Error(`cluster name ${JSON.stringify(name)}: use 1-41 of a-z, 0-9 and -`);
  return name;
}

export function clusterDir(name: string): string {
  return join(tmpdir(), `gatehouse-cluster-${validateName(name)}`);
}

function statePath(dir: string): string {
  return join(dir, 'state.json');
}

export function readState(name: string): ClusterState | null {
  const path = statePath(clusterDir(name));
  if (!existsSync(path)) return null;
  return JSON.parse(readFileSync(path, 'utf8')) as ClusterState;
}

/** Written whole to a temp file and renamed, so a crash never leaves half a state file. */
export function writeState(state: ClusterState): void {
  mkdirSync(state.dir, { recursive: true });
  const path = statePath(state.dir);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}
