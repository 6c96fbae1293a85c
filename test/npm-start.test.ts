// `npm start` as an operator's process manager runs it: SIGTERM goes to the npm process, not to the
// server. npm passes it to the shell it ran the script in; the script's `exec` makes that shell the
// server itself, which drains and exits (without it, the server kept running with parent 1).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { processTree } from '../bench/lib/processes.js';
import { freePort } from '../scripts/cluster/system.js';
import { childEnv, within } from './helpers/processes.js';

const REPO = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-npm-start-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('SIGTERM to `npm start` drains and stops the server it started', async () => {
  const port = await freePort();
  const env = childEnv({
    DATABASE_URL: `sqlite:${join(dir, 'gatehouse.db')}`,
    PORT: String(port),
    HOST: '127.0.0.1',
    GATEHOUSE_PASSWORD_HASH_PROFILE: 'test',
  });
  // The server runs with npm start's node flags only.
  delete env.NODE_OPTIONS;
  const npm = spawn('npm', ['start'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  npm.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  npm.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const exited = new Promise<number | string>((resolve) => npm.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  let started: number[] = [];
  try {
    await within(
      (async () => {
        for (;;) {
          const health = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null);
          if (health?.status === 200) return;
          if (npm.exitCode !== null) throw new Error(`npm start exited: ${output}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })(),
      30_000,
      'healthy server',
    );
    started = processTree(npm.pid as number).slice(1);
    assert.ok(started.length > 0, 'npm start has a child');
    npm.kill('SIGTERM');
    await within(exited, 15_000, 'npm exit after SIGTERM');
    await within(
      (async () => {
        while (started.some((pid) => existsSync(`/proc/${pid}`))) await new Promise((resolve) => setTimeout(resolve, 50));
      })(),
      5_000,
      `exit of everything npm start ran (${started.join(', ')})`,
    );
    assert.match(output, /"msg":"stopped"/, output);
    assert.equal(await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => 'refused'), 'refused');
  } finally {
    if (npm.exitCode === null) npm.kill('SIGKILL');
    for (const pid of started) if (existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
  }
});
