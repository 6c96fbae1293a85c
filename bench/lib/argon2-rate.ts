// The machine's raw argon2id rate with gatehouse's live parameters: one verify loop per core, for a
// fixed time. S3 (sign-in over HTTP) is read as a share of it.
//
// The loops run in a child process started with the memory settings `npm start` gives gatehouse
// (scripts/start-command.ts). In the runner's own process, with glibc's defaults, the same loops ran
// about 10% slower (76.0, 72.3 and 76.7 against 84.2, 80.9 and 84.1 verifies a second, alternating
// fresh processes), and how much slower depended on what the runner had done before: S3 was read
// against a machine slower than the one gatehouse hashed on.
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import argon2 from 'argon2';
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

export interface RawRateProcess {
  /** Runs the loops for `durationSeconds` in the child and returns its rate; one call at a time. */
  measure(durationSeconds: number): Promise<RawRate>;
  /** Closes the child's input, which ends it, and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * The loops in a child process with `npm start`'s memory settings (what S3 is read against). The
 * child stays up between measurements, so that S3 can be measured in turns with it (signin-turns.ts)
 * without a process start, and its half second of loading, in every turn.
 */
export async function startRawRate(): Promise<RawRateProcess> {
  const script = new URL('./argon2-rate-child.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: cleanEnv(startCommand().env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4_000);
  });
  const exited = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`the raw argon2id measurement exited (${signal ?? `code ${code}`}): ${stderr}`)));
  });
  exited.catch(() => {}); // observed by measure(); unobserved after a clean stop()
  const answers = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async measure(durationSeconds) {
      child.stdin.write(`${durationSeconds}\n`);
      const answer = await Promise.race([answers.next(), exited]);
      if (answer.done) return exited;
      return JSON.parse(answer.value) as RawRate;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin.end();
      await gone;
    },
  };
}
