// Child processes for the benchmark: servers on spare loopback ports, each in its own process group
// so that stopping it also stops whatever it started (gunicorn's workers). Every child is tracked,
// and stopAllChildren() (called from run.ts's finally) ends them all.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

export interface ServerProcess {
  name: string;
  pid: number;
  url: string;
  child: ChildProcess;
  output(): string;
}

const running = new Set<ChildProcess>();
const OUTPUT_KEPT_CHARS = 20_000;

/** The parent's environment without any service setting, plus the given ones. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(GATEHOUSE_|DATABASE_|AMQP_|REDIS_|TRUST_PROXY$|PORT$|HOST$|NODE_OPTIONS$)/.test(name)) continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  port: number;
  /** A path that answers 2xx once the server is ready. */
  readyPath: string;
  readyTimeoutMs: number;
}

export async function startServer(options: StartOptions): Promise<ServerProcess> {
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: cleanEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  running.add(child);
  child.on('exit', () => running.delete(child));
  let output = '';
  const keep = (chunk: string) => {
    output = (output + chunk).slice(-OUTPUT_KEPT_CHARS);
  };
  child.stdout?.setEncoding('utf8').on('data', keep);
  child.stderr?.setEncoding('utf8').on('data', keep);
  if (child.pid === undefined) throw new Error(`${options.name} did not start`);
  const url = `http://127.0.0.1:${options.port}`;
  const deadline = Date.now() + options.readyTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    const ready = await fetch(`${url}${options.readyPath}`, { signal: AbortSignal.timeout(2_000) })
      .then((response) => response.ok)
      .catch(() => false);
    if (ready) return { name: options.name, pid: child.pid, url, child, output: () => output };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stopServer(child);
  throw new Error(`${options.name} did not become ready within ${options.readyTimeoutMs} ms; its output:\n${output}`);
}

/** SIGTERM to the child's process group, SIGKILL after a grace period; resolves once it exited. */
export async function stopServer(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.pid === undefined) return;
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      // The group is already gone.
    }
  };
  signalGroup('SIGTERM');
  const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  signalGroup('SIGKILL'); // anything the child left behind in its group
  running.delete(child);
}

export async function stopAllChildren(): Promise<void> {
  await Promise.all([...running].map((child) => stopServer(child)));
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The process and its descendants (a few levels: enough for gunicorn's master and workers, and npm start's server). */
export function processTree(pid: number): number[] {
  const all = [pid];
  let level = [pid];
  for (let depth = 0; depth < 3 && level.length > 0; depth++) {
    level = level.flatMap(childPids);
    all.push(...level);
  }
  return all;
}

function statusField(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Peak resident set (VmHWM) of the process and its descendants, in bytes. */
export function peakRssBytes(pid: number): number {
  return processTree(pid).reduce((sum, each) => sum + statusField(each, 'VmHWM'), 0);
}

/** Resets the peak (writing 5 to clear_refs), so the next reading covers one scenario; false if refused. */
export function resetPeakRss(pid: number): boolean {
  let all = true;
  for (const each of processTree(pid)) {
    try {
      writeFileSync(`/proc/${each}/clear_refs`, '5');
    } catch {
      all = false;
    }
  }
  return all;
}
