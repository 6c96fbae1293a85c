// The priority of libuv's thread pool, where argon2id hashes (and node's file system and DNS work)
// run. bin/gatehouse.cjs notes the pool's threads as it starts them; serve() lowers their priority so
// that, while sign-ins keep every core busy, the event loop (every request that needs no hash) and a
// database on the same machine still get a core when they need one, and the hashes take what is left.
// Sign-ins beyond what that leaves wait in the hash line or are shed with 503, as before.
import { setPriority } from 'node:os';

const POOL = Symbol.for('gatehouse.threadPool');

/** The thread ids bin/gatehouse.cjs found for the pool, or null when it did not start this process. */
function threadPoolThreads(): number[] | null {
  const noted: unknown = (globalThis as Record<symbol, unknown>)[POOL];
  return Array.isArray(noted) && noted.every((thread) => Number.isInteger(thread)) ? (noted as number[]) : null;
}

/** How many threads libuv's pool has, when bin/gatehouse.cjs started this process and counted them; else null. */
export function threadPoolSize(): number | null {
  return threadPoolThreads()?.length ?? null;
}

export type ThreadPoolPriority = { nice: number; threads: number[] } | { nice: null; why: string };

/** Sets the pool's threads to `nice` (Linux: a nice value is a thread's own); says why it did not. */
export function setThreadPoolPriority(nice: number): ThreadPoolPriority {
  if (nice === 0) return { nice: null, why: 'GATEHOUSE_HASH_NICE=0' };
  const threads = threadPoolThreads();
  if (!threads)
    return { nice: null, why: 'not started by bin/gatehouse.cjs (npm start, npx gatehouse or the image), so its threads are not known' };
  try {
    for (const thread of threads) setPriority(thread, nice);
  } catch (error) {
    return { nice: null, why: `setpriority failed: ${(error as Error).message}` };
  }
  return { nice, threads };
}
