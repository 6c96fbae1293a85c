// The machine under the cluster: finding (and, as root, installing) the Debian packages it needs,
// running commands as the postgres user, spare ports, and processes known only by their pid (the
// harness that started them may have exited since).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to its exit and collects its output. Resolves on 'exit', not 'close': pg_ctl and
 * nginx leave daemons behind that may hold inherited pipes open.
 */
export function run(command: string, args: string[], options: { asPostgres?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  // PostgreSQL refuses to run as root, so as root its tools run as the postgres user.
  const [file, argv] = options.asPostgres && isRoot() ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

/** As run(), but a non-zero exit is an error that carries the command's output. */
export async function runChecked(command: string, args: string[], options: { asPostgres?: boolean; env?: NodeJS.ProcessEnv } = {}) {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.code}\n${result.stdout}${result.stderr}`.trim());
  }
  return result;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('could not find a free port');
  return address.port;
}

/** Distinct spare ports (a port just released is not handed out twice in one call). */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/**
 * Whether `pid` is a live process whose command line contains `expect`: a pid recorded by an
 * earlier run may since belong to someone else's process, which must never be signalled.
 * A zombie counts as gone.
 */
export function isOurs(pid: number | null | undefined, expect: string): pid is number {
  if (!pid) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(expect);
  } catch {
    return false;
  }
}

/** Waits until the process is gone; false when it is still there after `timeoutMs`. */
export async function waitForExit(pid: number, expect: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isOurs(pid, expect)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

export function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it is truthy; throws naming `what` after `timeoutMs`. */
export async function waitUntil<T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface Tools {
  postgresBin: string;
  nginx: string;
}

function findPostgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((entry) => /^\d+$/.test(entry) && existsSync(`${root}/${entry}/bin/pg_basebackup`))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? `${root}/${versions[0]}/bin` : null;
}

export function findNginx(): string | null {
  for (const candidate of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) if (existsSync(candidate)) return candidate;
  return null;
}

/** The tools when they are all installed; otherwise the Debian packages that are missing. */
export function findTools(): { tools: Tools | null; missing: string[] } {
  const postgresBin = findPostgresBin();
  const nginx = findNginx();
  const missing = [...(postgresBin ? [] : ['postgresql']), ...(nginx ? [] : ['nginx'])];
  return { tools: postgresBin && nginx ? { postgresBin, nginx } : null, missing };
}

/**
 * As root, installs Debian packages with apt-get (and says so on `log`); otherwise fails with a
 * message that says what to install.
 */
export async function aptInstall(packages: string[], log: (line: string) => void): Promise<void> {
  if (!isRoot()) {
    throw new Error(
      `missing Debian packages: ${packages.join(', ')}. Only root can install them: run this as root, or run \`apt-get install ${packages.join(' ')}\` as root first.`,
    );
  }
  log(`installing missing Debian packages with apt-get: ${packages.join(', ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = ['install', '-y', '--no-install-recommends', ...packages];
  if ((await run('apt-get', install, { env })).code !== 0) {
    // The package lists may be missing or stale (a fresh container): refresh them once.
    await runChecked('apt-get', ['update'], { env });
    await runChecked('apt-get', install, { env });
  }
}

/** Finds PostgreSQL and nginx, installing the missing ones as aptInstall() does. */
export async function ensureTools(log: (line: string) => void): Promise<Tools> {
  const found = findTools();
  if (found.tools) return found.tools;
  await aptInstall(found.missing, log);
  const again = findTools();
  if (!again.tools) throw new Error(`apt-get ran but these are still missing: ${again.missing.join(', ')}`);
  log('installed.');
  return again.tools;
}
