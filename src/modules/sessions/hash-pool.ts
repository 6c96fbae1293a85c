// A bounded pool for password hashing: at most `concurrency` hashes run at once. A hash that cannot
// start at once waits in line only if it can expect to start within `maxWaitMs` (the line's length
// times the measured time of a hash, over the lanes) and the line is shorter than `queueMax`; past
// that the caller gets 503 overloaded with Retry-After at once, instead of waiting without end while
// argon2id saturates every core. So the line is as long as the machine can clear within the wait
// budget: a faster machine or cheaper parameters let more wait, a loaded one fewer.
//
// The 503 itself is sent after `shedDelayMs`: clients that retry at once (many do, whatever
// Retry-After says) would otherwise make thousands of requests a second out of a few connections,
// and answering those would take the very CPU the hashes need.
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../../http/errors.js';

export interface HashPool {
  run<T>(work: () => Promise<T>): Promise<T>;
  /**
   * The refusal run() would give a hash asked for now (the pause, then 503), or undefined when one
   * could start or wait. Callers ask before their other work for a hash (a user lookup, a throttle
   * charge), so that a refused request costs only its answer.
   */
  refusal(): Promise<never> | undefined;
  readonly active: number;
  readonly queued: number;
}

export function createHashPool(
  concurrency: number,
  queueMax: number,
  onReject: () => void = () => {},
  maxWaitMs = Number.POSITIVE_INFINITY,
  shedDelayMs = 0,
): HashPool {
  let active = 0;
  const waiting: (() => void)[] = [];
  // Moving average of one hash's duration; 0 until the first one has finished.
  let typicalMs = 0;

  function release(): void {
    const next = waiting.shift();
    if (next) next();
    else active -= 1;
  }

  async function refuse(): Promise<never> {
    onReject();
    if (shedDelayMs > 0) await sleep(shedDelayMs);
    throw new AppError('overloaded', 'Too many sign-ins are being checked right now; retry shortly.', {
      headers: { 'retry-after': '1' },
    });
  }

  function mayWait(): boolean {
    if (waiting.length >= queueMax) return false;
    // Before any hash has been timed there is no estimate: only queueMax applies.
    return typicalMs === 0 || ((waiting.length + 1) * typicalMs) / concurrency <= maxWaitMs;
  }

  return {
    get active() {
      return active;
    },
    get queued() {
      return waiting.length;
    },
    refusal() {
      return active < concurrency || mayWait() ? undefined : refuse();
    },
    async run(work) {
      if (active < concurrency) {
        active += 1;
      } else if (mayWait()) {
        // The slot is handed over by release(): `active` stays the same.
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else {
        return refuse();
      }
      const started = performance.now();
      try {
        return await work();
      } finally {
        const elapsed = performance.now() - started;
        typicalMs = typicalMs === 0 ? elapsed : typicalMs * 0.9 + elapsed * 0.1;
        release();
      }
    },
  };
}
