// S3 against the raw argon2id rate, measured in turns. Measured once before the load and once after
// it, the raw rate moved by up to 12% between the two on a machine whose speed drifts (87.0 against
// 97.6, 88.1 against 80.3 verifies a second: RESULTS, sixteenth round), so where in that range the
// machine was during S3's own 10 s was anyone's guess, and S3's share moved with it. Here, as S1 and
// S2 take turns with the ceiling (paired.ts), S3's load and the raw loops take turns in slices, raw
// first in even slices and S3 first in odd ones (R S S R R S …), and S3 is read against the raw
// slices' mean.
//
// The slices are longer than paired.ts's: when a slice of load stops, the hashes gatehouse is
// computing at that moment are lost to it (their clients are gone): two on two cores, half done on
// average, about 0.4% of a 3 s slice (0.6% with three, before the seventeenth round). Slices last whole seconds because autocannon ends a run only at
// its next one-second tick (a run of 2.5 s lasted 3). After every slice of load the bench waits until
// gatehouse has finished the hashes it left (hash-drain.ts), so that neither the next raw slice nor
// the next slice of load starts with the last one's work still on the cores.
import type { CpuSnapshot } from './cpu-split.js';
import type { LoadFigures } from './load.js';
import { combine } from './paired.js';

export const SIGNIN_SLICE_SECONDS = 3;

/** A raw slice's answer: at least its rate (argon2-rate.ts's RawRate has more). */
export interface RawSlice {
  verifiesPerSecond: number;
}

export interface SignInTurnsParts<R extends RawSlice> {
  /** One slice of S3's load for `seconds`. */
  load(seconds: number): Promise<LoadFigures>;
  /** Waits until gatehouse has no hash running or waiting; returns how long that took (ms). */
  drain(): Promise<number>;
  /** The raw loops for `seconds`. */
  raw(seconds: number): Promise<R>;
  /** Where the machine's time is now, for the CPU split over the load's slices; absent off Linux. */
  snapshot?: () => CpuSnapshot;
}

export interface SignInTurns<R extends RawSlice> {
  /** S3's slices as one run (combine(): rates over the total time, the highest slice's p99). */
  signIns: LoadFigures;
  /** The raw slices, in the order they ran; S3 is read against their mean rate. */
  raw: R[];
  /** How long each slice of load left gatehouse hashing after it stopped, in ms. */
  drainMs: number[];
  /** Snapshots taken just before and just after each slice of load (with `snapshot`). */
  intervals: [CpuSnapshot, CpuSnapshot][];
  sliceSeconds: number;
}

/**
 * S3 for about `durationSeconds` in all (an even number of slices of SIGNIN_SLICE_SECONDS, two at
 * least), in turns with the raw loops for as long, after a warm-up of load.
 */
export async function measureSignInsInTurns<R extends RawSlice>(
  parts: SignInTurnsParts<R>,
  durationSeconds: number,
  warmUpSeconds = 1,
): Promise<SignInTurns<R>> {
  const slices = Math.max(2, 2 * Math.round(durationSeconds / SIGNIN_SLICE_SECONDS / 2));
  const sliceSeconds = SIGNIN_SLICE_SECONDS;
  if (warmUpSeconds > 0) {
    await parts.load(warmUpSeconds);
    await parts.drain();
  }
  const loads: LoadFigures[] = [];
  const raw: R[] = [];
  const drainMs: number[] = [];
  const intervals: [CpuSnapshot, CpuSnapshot][] = [];
  for (let i = 0; i < slices; i += 1) {
    const order = i % 2 === 0 ? (['raw', 'load'] as const) : (['load', 'raw'] as const);
    for (const side of order) {
      if (side === 'raw') {
        raw.push(await parts.raw(sliceSeconds));
        continue;
      }
      const before = parts.snapshot?.();
      loads.push(await parts.load(sliceSeconds));
      if (before && parts.snapshot) intervals.push([before, parts.snapshot()]);
      drainMs.push(await parts.drain());
    }
  }
  return { signIns: combine(loads, 'highest'), raw, drainMs, intervals, sliceSeconds };
}

/** The rate S3 is read against: the mean of the raw slices' rates (all of one length). */
export function rawMean(raw: readonly RawSlice[]): number {
  if (raw.length === 0) throw new Error('no raw slices');
  return raw.reduce((sum, each) => sum + each.verifiesPerSecond, 0) / raw.length;
}
