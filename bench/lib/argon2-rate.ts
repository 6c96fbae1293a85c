// The machine's raw argon2id rate with gatehouse's live parameters: one verify loop per core, for a
// fixed time. S3 (sign-in over HTTP) is read as a share of it.
//
// The loops run in a child process started with the memory settings `npm start` gives gatehouse
// (scripts/start-command.ts). In the runner's own process, with glibc's defaults, the same loops ran
// about 10% slower (76.0, 72.3 and 76.7 against 84.2, 80.9 and 84.1 verifies a second, alternating
// fresh processes), and how much slower depended on what the runner had done before: S3 was read
// against a machine slower than the one gatehouse hashed on.
import { availableParallelism } from 'node:os';
import argon2 from 'argon2';
import { run } from '../../scripts/cluster/system.js';
import { startCommand } from '../../scripts/start-command.js';
import { HASH_PROFILES } from '../../src/modules/sessions/passwords.js';
import { cleanEnv } from './processes.js';

export interface RawRate {
  verifiesPerSecond: number;
  lanes: number;
  /** The glibc settings the loops ran with (MALLOC_*), as the child process saw them. */
  malloc: Record<string, string>;
}

/** The loops, in this process. */
export async function measureArgon2VerifiesPerSecond(durationSeconds: number): Promise<RawRate> {
  const options = { type: argon2.argon2id as 2, ...HASH_PROFILES.owasp };
  const hash = await argon2.hash('bench-password-long-enough', options);
  await argon2.verify(hash, 'bench-password-long-enough'); // warm up
  const lanes = availableParallelism();
  const started = performance.now();
  const deadline = started + durationSeconds * 1000;
  let verifies = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (performance.now() < deadline) {
        await argon2.verify(hash, 'bench-password-long-enough');
        verifies += 1;
      }
    }),
  );
  const malloc = Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('MALLOC_'))) as Record<string, string>;
  return { verifiesPerSecond: verifies / ((performance.now() - started) / 1000), lanes, malloc };
}

/** The loops in a child process with `npm start`'s memory settings (what S3 is read against). */
export async function measureRawRate(durationSeconds: number): Promise<RawRate> {
  const child = new URL('./argon2-rate-child.ts', import.meta.url).pathname;
  const result = await run(process.execPath, ['--import', 'tsx', child, String(durationSeconds)], { env: cleanEnv(startCommand().env) });
  if (result.code !== 0) throw new Error(`the raw argon2id measurement exited with ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as RawRate;
}
