// The gatehouse command as real child processes (bin/gatehouse.cjs): one-shot commands and `serve`
// instances on spare ports. Every child is tracked, so a suite's after() can kill what is left.
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from '../../scripts/cluster/system.js';

const REPO = new URL('../..', import.meta.url).pathname;
const running = new Set<ChildProcess>();

/** Kills (SIGKILL) every child that is still running and waits for each to exit. */
export async function killRemainingChildren(): Promise<void> {
  const exits = [...running].map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  );
  await Promise.all(exits);
  running.clear();
}

/** The parent's environment without any gatehouse setting, plus the given ones. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(GATEHOUSE_|DATABASE_|AMQP_|REDIS_|PORT$|HOST$|NODE_TEST_CONTEXT$)/.test(name)) continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

export interface GatehouseProcess {
  child: ChildProcess;
  /** The exit code, or the signal's name when a signal ended it. */
  exited: Promise<number | string>;
  output(): { stdout: string; stderr: string };
}

export function spawnGatehouse(args: string[], env: Record<string, string>): GatehouseProcess {
  const child = spawn(process.execPath, ['bin/gatehouse.cjs', ...args], { cwd: REPO, env: childEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? -1);
    });
  });
  return { child, exited, output: () => ({ stdout, stderr }) };
}

/** Runs a one-shot command to its end (killed after `timeoutMs`): exit code and output. */
export async function runGatehouse(args: string[], env: Record<string, string>, timeoutMs = 60_000) {
  const cli = spawnGatehouse(args, env);
  cli.child.stdin?.end();
  const timer = setTimeout(() => cli.child.kill('SIGKILL'), timeoutMs);
  try {
    const code = await cli.exited;
    return { code, ...cli.output() };
  } finally {
    clearTimeout(timer);
  }
}

/** The promise's value, or a failure naming what did not happen within the bound. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface Server extends GatehouseProcess {
  base: string;
  port: number;
  /** Polls the server's standard output until the predicate holds; fails at once if the server exits. */
  waitFor(predicate: (stdout: string) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** SIGTERM, then the exit code (bounded). */
  stop(timeoutMs?: number): Promise<number | string>;
}

/** `gatehouse serve` on a spare loopback port, once /healthz answers (bounded). */
export async function startServer(env: Record<string, string>, timeoutMs = 30_000): Promise<Server> {
  const port = await freePort();
  const started = spawnGatehouse(['serve'], { ...env, PORT: String(port), HOST: '127.0.0.1' });
  let exit: number | string | undefined;
  started.exited.then((code) => {
    exit = code;
  });
  const base = `http://127.0.0.1:${port}`;
  const server: Server = {
    ...started,
    base,
    port,
    async waitFor(predicate, what, waitMs = 30_000) {
      const deadline = Date.now() + waitMs;
      while (!predicate(started.output().stdout)) {
        if (exit !== undefined || Date.now() > deadline) {
          const { stdout, stderr } = started.output();
          throw new Error(`waiting for ${what}: exit ${exit}\n${stdout}\n${stderr}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    stop(stopMs = 10_000) {
      started.child.kill('SIGTERM');
      return within(started.exited, stopMs, 'exit after SIGTERM');
    },
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const health = await fetch(`${base}/healthz`).catch(() => null);
    if (health?.status === 200) return server;
    if (exit !== undefined || Date.now() > deadline) {
      started.child.kill('SIGKILL');
      const { stdout, stderr } = started.output();
      throw new Error(`gatehouse serve did not become healthy (exit ${exit})\n${stdout}\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
