// A bounded pool for password hashing: at most `concurrency` hashes run at once and at most
// `queueMax` wait; past that the caller gets 503 overloaded with Retry-After at once, instead of
// waiting without end while argon2id saturates every core.
import { AppError } from '../../http/errors.js';

export interface HashPool {
  run<T>(work: () => Promise<T>): Promise<T>;
  readonly active: number;
  readonly queued: number;
}

export function createHashPool(concurrency: number, queueMax: number, onReject: () => void = () => {}): HashPool {
  let active = 0;
  const waiting: (() => void)[] = [];

  function release(): void {
    const next = waiting.shift();
    if (next) next();
    else active -= 1;
  }

  return {
    get active() {
      return active;
    },
    get queued() {
      return waiting.length;
    },
    async run(work) {
      if (active < concurrency) {
        active += 1;
      } else if (waiting.length < queueMax) {
        // The slot is handed over by release(): `active` stays the same.
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else {
        onReject();
        throw new AppError('overloaded', 'Too many sign-ins are being checked right now; retry shortly.', {
          headers: { 'retry-after': '1' },
        });
      }
      try {
        return await work();
      } finally {
        release();
      }
    },
  };
}
