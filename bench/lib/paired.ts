// S1 and S2 against the ceiling, measured in alternating slices. This machine's speed moves from
// one second to the next (the ceiling alone, in back-to-back 5 s runs, gave 28,795 to 44,343 req/s),
// so a scenario measured in one stretch and the ceiling in another compared moments as much as
// code. Here each side runs for the same total time in short slices, taking turns in the order
// ceiling, scenario, scenario, ceiling, ceiling, … so that a steady drift weighs on both alike,
// and the ratio is of the totals. Both servers get an untimed warm-up first.
import type { LoadFigures, LoadOptions } from './load.js';
import { runLoad } from './load.js';
import { peakRssBytes, resetPeakRss, type ServerProcess } from './processes.js';
import type { Measured } from './report.js';

export const SLICE_SECONDS = 1;
const WARM_UP_SECONDS = 1;

export interface Side {
  server: ServerProcess;
  load: LoadOptions;
}

export interface PairedFigures {
  scenario: Measured;
  ceiling: Measured;
}

/** How a run of `durationSeconds` a side is cut: an even number of slices (two at least) of about SLICE_SECONDS. */
export function slicing(durationSeconds: number): { slices: number; sliceSeconds: number } {
  const slices = Math.max(2, 2 * Math.round(durationSeconds / SLICE_SECONDS / 2));
  return { slices, sliceSeconds: durationSeconds / slices };
}

/**
 * How the slices' p99s make one: the highest (S1, S2: never lower than the whole run's would be), or
 * the median (S5, whose target is a ratio of p99s: one slow slice of either side would decide it).
 */
export type P99Of = 'highest' | 'median';

export async function measurePaired(
  scenario: Side,
  ceiling: Side,
  durationSeconds: number,
  p99Of: P99Of = 'highest',
): Promise<PairedFigures> {
  const { slices, sliceSeconds } = slicing(durationSeconds);
  for (const side of [ceiling, scenario]) await runLoad({ ...side.load, durationSeconds: WARM_UP_SECONDS });
  resetPeakRss(scenario.server.pid);
  resetPeakRss(ceiling.server.pid);
  const done = { scenario: [] as LoadFigures[], ceiling: [] as LoadFigures[] };
  for (let i = 0; i < slices; i += 1) {
    // ceiling first in even slices, the scenario first in odd ones: C S S C C S …
    const order = i % 2 === 0 ? (['ceiling', 'scenario'] as const) : (['scenario', 'ceiling'] as const);
    for (const name of order) {
      const side = name === 'ceiling' ? ceiling : scenario;
      done[name].push(await runLoad({ ...side.load, durationSeconds: sliceSeconds }));
    }
  }
  return {
    scenario: { ...combine(done.scenario, p99Of), peakRssBytes: peakRssBytes(scenario.server.pid) },
    ceiling: { ...combine(done.ceiling, p99Of), peakRssBytes: peakRssBytes(ceiling.server.pid) },
  };
}

/**
 * One figure from several slices: rates are total responses over total time; counts are summed.
 * Latency percentiles cannot be merged from autocannon's summaries: p50 is the median of the
 * slices' p50s and p99 the highest of their p99s (never lower than the whole run's p99 would be),
 * or their median.
 */
export function combine(parts: readonly LoadFigures[], p99Of: P99Of = 'highest'): LoadFigures {
  if (parts.length === 0) throw new Error('combine: no slices');
  const seconds = parts.reduce((sum, part) => sum + part.durationSeconds, 0);
  const total = (rate: (part: LoadFigures) => number) => parts.reduce((sum, part) => sum + rate(part) * part.durationSeconds, 0);
  const statusCounts: Record<string, number> = {};
  for (const part of parts)
    for (const [status, count] of Object.entries(part.statusCounts)) statusCounts[status] = (statusCounts[status] ?? 0) + count;
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)] as number;
  const p99s = parts.map((part) => part.p99Ms);
  return {
    requestsPerSecond: total((part) => part.requestsPerSecond) / seconds,
    successesPerSecond: total((part) => part.successesPerSecond) / seconds,
    p50Ms: median(parts.map((part) => part.p50Ms)),
    p99Ms: p99Of === 'median' ? median(p99s) : Math.max(...p99s),
    non2xx: parts.reduce((sum, part) => sum + part.non2xx, 0),
    errors: parts.reduce((sum, part) => sum + part.errors, 0),
    timeouts: parts.reduce((sum, part) => sum + part.timeouts, 0),
    statusCounts,
    durationSeconds: seconds,
  };
}
