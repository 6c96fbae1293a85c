// nginx for a cluster: deploy/nginx/gatehouse.conf (the file that ships) rendered with this
// cluster's addresses, edge rate and paths, inside a main config of its own (prefix, pid, logs and
// temp dirs in the cluster's directory), so /etc/nginx is never read nor touched.
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, run, runChecked } from './system.js';

export const SHIPPED_CONFIG = new URL('../../deploy/nginx/gatehouse.conf', import.meta.url).pathname;

export interface RenderOptions {
  upstreamPorts: number[];
  listenPort: number;
  ratePerSecond: number;
  cacheDir: string;
  accessLog: string;
}

/**
 * Substitutes exactly the deployment-specific strings; every one must be found, so a change to the
 * shipped file that the harness does not know about fails loudly instead of testing something else.
 */
export function renderGatehouseConf(template: string, options: RenderOptions): string {
  const replacements: [string, string][] = [
    ...options.upstreamPorts.map((port, i): [string, string] => [`server gatehouse-${i + 1}:8080 `, `server 127.0.0.1:${port} `]),
    ['listen 80;', `listen 127.0.0.1:${options.listenPort};`],
    ['rate=50r/s', `rate=${options.ratePerSecond}r/s`],
    ['/var/cache/nginx/gatehouse ', `${options.cacheDir} `],
    ['/var/log/nginx/access.log ', `${options.accessLog} `],
  ];
  let rendered = template;
  for (const [from, to] of replacements) {
    if (!rendered.includes(from))
      throw new Error(`${SHIPPED_CONFIG} no longer contains ${JSON.stringify(from)}; update scripts/cluster/nginx.ts`);
    rendered = rendered.replaceAll(from, to);
  }
  return rendered;
}

export interface NginxLayout {
  prefix: string;
  conf: string;
  pidFile: string;
  accessLog: string;
  errorLog: string;
}

export function nginxLayout(dir: string): NginxLayout {
  const prefix = join(dir, 'nginx');
  return {
    prefix,
    conf: join(prefix, 'nginx.conf'),
    pidFile: join(prefix, 'nginx.pid'),
    accessLog: join(dir, 'logs', 'nginx-access.log'),
    errorLog: join(dir, 'logs', 'nginx-error.log'),
  };
}

/** Debian's unprivileged web user for the workers, when nginx is started as root. */
function workerUser(): { name: string; uid: number; gid: number } | null {
  if (!isRoot()) return null;
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name === 'www-data' || name === 'nobody') return { name, uid: Number(uid), gid: Number(gid) };
  }
  return null;
}

/** Writes nginx.conf and gatehouse.conf under the layout's prefix; returns the main config path. */
export function writeNginxConfig(layout: NginxLayout, options: Omit<RenderOptions, 'cacheDir' | 'accessLog'>): string {
  const temp = join(layout.prefix, 'temp');
  const cacheDir = join(layout.prefix, 'cache');
  const user = workerUser();
  for (const dir of [layout.prefix, join(layout.prefix, '..', 'logs'), temp, cacheDir]) mkdirSync(dir, { recursive: true });
  // The workers write the cache and the buffered bodies; they run as the worker user.
  if (user) for (const dir of [temp, cacheDir]) chownSync(dir, user.uid, user.gid);
  const rendered = renderGatehouseConf(readFileSync(SHIPPED_CONFIG, 'utf8'), { ...options, cacheDir, accessLog: layout.accessLog });
  writeFileSync(join(layout.prefix, 'gatehouse.conf'), rendered);
  const main = [
    '# Rendered by scripts/cluster; the gatehouse part is deploy/nginx/gatehouse.conf.',
    ...(user ? [`user ${user.name};`] : []),
    'worker_processes 1;',
    `pid ${layout.pidFile};`,
    `lock_file ${join(layout.prefix, 'nginx.lock')};`,
    `error_log ${layout.errorLog} warn;`,
    'events { worker_connections 2048; }',
    'http {',
    `    client_body_temp_path ${join(temp, 'client_body')};`,
    `    proxy_temp_path ${join(temp, 'proxy')};`,
    `    fastcgi_temp_path ${join(temp, 'fastcgi')};`,
    `    uwsgi_temp_path ${join(temp, 'uwsgi')};`,
    `    scgi_temp_path ${join(temp, 'scgi')};`,
    `    include ${join(layout.prefix, 'gatehouse.conf')};`,
    '}',
    '',
  ].join('\n');
  writeFileSync(layout.conf, main);
  return layout.conf;
}

/** `nginx -t` on the rendered config: its output, and whether it passed. */
export async function testNginxConfig(nginx: string, layout: NginxLayout): Promise<{ ok: boolean; output: string }> {
  const result = await run(nginx, ['-t', '-p', `${layout.prefix}/`, '-c', layout.conf, '-e', layout.errorLog]);
  return { ok: result.code === 0, output: `${result.stdout}${result.stderr}`.trim() };
}

/** Starts nginx as a daemon (its master writes the pid file). */
export async function startNginx(nginx: string, layout: NginxLayout): Promise<void> {
  await runChecked(nginx, ['-p', `${layout.prefix}/`, '-c', layout.conf, '-e', layout.errorLog]);
}

export function nginxPid(layout: NginxLayout): number | null {
  if (!existsSync(layout.pidFile)) return null;
  const pid = Number(readFileSync(layout.pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}
