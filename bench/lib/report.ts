// The runner's report: a Markdown table (each scenario as a share of the ceiling, with the issue's
// targets marked met or missed) and the same figures as JSON.
import { cpus } from 'node:os';
import { HASH_PROFILES } from '../../src/modules/sessions/passwords.js';
import type { CpuSplit } from './cpu-split.js';
import type { PagePair } from './deep-page.js';
import type { ImportFigures } from './import-rate.js';
import type { LoadFigures } from './load.js';
import { SLICE_SECONDS, slicing } from './paired.js';

export type Measured = LoadFigures & { peakRssBytes: number };
export interface Row extends Measured {
  scenario: string;
  what: string;
  /** S6: the sign-in load that ran alongside. */
  alongside?: LoadFigures;
  /** S1 and S2: the ceiling measured in turns with them (lib/paired.ts), which their share is of. */
  ceiling?: Measured;
}

/** The raw rate S3 is read against: the mean of the raw slices taken in turns with its load (signin-turns.ts). */
export interface Argon2Rate {
  verifiesPerSecond: number;
  lanes: number;
  /** Each raw slice's rate, in the order they ran. */
  slices: number[];
  sliceSeconds: number;
  /** How long gatehouse took to finish the hashes each slice of S3's load left it. */
  drainMs: number[];
  /** Where the machine's CPU time went during S3's load (lib/cpu-split.ts); null where /proc is not there. */
  split: CpuSplit | null;
}

export interface ReportInput {
  target: string;
  durationSeconds: number;
  connections: number;
  smoke: boolean;
  /**
   * The ceiling's figures: those measured in turns with S1 and S2 or, when neither ran, one run before
   * gatehouse started. S1 and S2 are read against their own; the other rows against the mean.
   */
  ceilingRuns: Measured[];
  rows: Row[];
  argon2Rate: Argon2Rate | null;
  originS2: Measured | null;
  notes: string[];
  /** S5 and S7 (PostgreSQL only), on their own database of `users` users. */
  big: {
    users: number;
    seeded: { users: number; seconds: number } | null;
    deepPages: PagePair[];
    importRun: ImportFigures | null;
    importRssBytes: number;
  } | null;
}

/** Issue 6's targets for S5 and S7, as ratios within one run. */
export const S5_MAX_P99_RATIO = 1.5;
export const S7_MIN_USERS_PER_SECOND = 20_000;

const MB = 1024 * 1024;
const fixed = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
const verdict = (met: boolean) => (met ? 'met' : 'MISSED');

/** The mean of the ceiling's runs (NaN without any). */
function ceilingRate(runs: readonly Measured[]): number {
  return runs.length > 0 ? runs.reduce((sum, run) => sum + run.requestsPerSecond, 0) / runs.length : Number.NaN;
}

/** A row's share of the ceiling: of the ceiling measured in turns with it, else of the mean. */
function shareOfCeiling(row: Row, runs: readonly Measured[]): number {
  return row.requestsPerSecond / (row.ceiling ? row.ceiling.requestsPerSecond : ceilingRate(runs));
}

function targetOf(row: Row, input: ReportInput): { text: string; met: boolean | null } {
  const ofCeiling = shareOfCeiling(row, input.ceilingRuns);
  switch (row.scenario) {
    case 'S1': {
      const met = ofCeiling >= 0.5 && row.peakRssBytes <= 200 * MB;
      return { text: `≥ 50% of ceiling, RSS ≤ 200 MB: ${verdict(met)}`, met };
    }
    case 'S2': {
      const vsOrigin = input.originS2 ? row.successesPerSecond / input.originS2.successesPerSecond : null;
      const met = ofCeiling >= 0.4 && (vsOrigin === null || vsOrigin >= 100);
      const origin = vsOrigin === null ? 'origin not measured' : `${fixed(vsOrigin, 0)}× origin`;
      return { text: `≥ 40% of ceiling and ≥ 100× origin (${origin}): ${verdict(met)}`, met };
    }
    case 'S3': {
      if (!input.argon2Rate) return { text: 'raw argon2id rate not measured', met: null };
      const share = row.successesPerSecond / input.argon2Rate.verifiesPerSecond;
      const met = share >= 0.85 && row.p99Ms <= 500;
      return { text: `≥ 85% of raw argon2id (${fixed(share * 100, 1)}%), p99 ≤ 500 ms: ${verdict(met)}`, met };
    }
    case 'A/A':
      return { text: 'none (100% on a quiet machine)', met: null };
    case 'S6': {
      const met = row.p99Ms <= 50;
      return { text: `S1 p99 ≤ 50 ms: ${verdict(met)}`, met };
    }
    default:
      return { text: 'no target', met: null };
  }
}

/** The parameters gatehouse hashes with in the bench (its `owasp` profile), as m=… t=… p=…. */
export function argon2Parameters(): string {
  const { memoryCost, timeCost, parallelism } = HASH_PROFILES.owasp;
  return `m=${memoryCost} t=${timeCost} p=${parallelism}`;
}

/** "lowest–highest" of some figures, or the one figure when they are all alike at that precision. */
function range(values: readonly number[], digits: number): string {
  const low = fixed(Math.min(...values), digits);
  const high = fixed(Math.max(...values), digits);
  return low === high ? low : `${low}–${high}`;
}

/** S3's CPU split as one line: the hashing threads' share is about what S3 can sign in of the raw rate. */
export function describeSplit(split: CpuSplit, s3: LoadFigures): string {
  const percent = (share: number) => `${fixed(share * 100, 1)}%`;
  const responses = s3.requestsPerSecond * s3.durationSeconds;
  const perResponse = responses > 0 ? ` (${fixed((split.eventLoopSeconds * 1000) / responses, 2)} ms a response)` : '';
  if (split.hashing === 0)
    return `During S3 gatehouse's event loop used ${percent(split.eventLoop)} of the machine${perResponse}; its hashing threads could not be told from its other threads (the thread pool is not at a raised nice value).`;
  return `During S3 the machine's CPU time went to gatehouse's hashing threads ${percent(split.hashing)}, its event loop ${percent(split.eventLoop)}${perResponse}, its other threads ${percent(split.otherThreads)}, the rest of the machine (the runner, the database) ${percent(split.elsewhere)}, idle ${percent(split.idle)}.`;
}

export function renderReport(input: ReportInput): { markdown: string; json: Record<string, unknown> } {
  const runs = input.ceilingRuns;
  const ceilingRps = ceilingRate(runs);
  const line = (name: string, what: string, figures: Measured, ratio: string, target: string) =>
    `| ${name} | ${what} | ${fixed(figures.requestsPerSecond, 0)} | ${fixed(figures.successesPerSecond, 0)} | ${fixed(figures.p50Ms)} | ${fixed(figures.p99Ms)} | ${figures.non2xx} | ${figures.errors} | ${fixed(figures.peakRssBytes / MB, 0)} | ${ratio} | ${target} |`;
  const lines = [
    `gatehouse bench, ${input.target}, ${input.durationSeconds} s per scenario, ${input.connections} connections${input.smoke ? ' (smoke)' : ''}, ` +
      `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${new Date().toISOString()}`,
  ];
  if (runs.length > 0 || input.rows.length > 0)
    lines.push(
      '',
      '| scenario | what | req/s | 2xx/s | p50 ms | p99 ms | non-2xx | errors | peak RSS MB | of ceiling | target |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
  const paired = input.rows.filter((row) => row.ceiling);
  if (paired.length === 0) for (const run of runs) lines.push(line('ceiling', 'bare Fastify 5 GET /, before gatehouse', run, '100.0%', ''));
  const results = input.rows.map((row) => ({ row, target: targetOf(row, input) }));
  for (const { row, target } of results) {
    if (row.ceiling) lines.push(line('ceiling', `bare Fastify 5 GET /, in turns with ${row.scenario}`, row.ceiling, '100.0%', ''));
    lines.push(line(row.scenario, row.what, row, `${fixed(shareOfCeiling(row, runs) * 100, 1)}%`, target.text));
  }
  if (input.originS2)
    lines.push(
      line(
        'S2 origin',
        'Flask GET /api/users (Basic, 100 users)',
        input.originS2,
        `${fixed((input.originS2.requestsPerSecond / ceilingRps) * 100, 2)}%`,
        '',
      ),
    );
  lines.push('');
  if (paired.length > 0) {
    const { slices, sliceSeconds } = slicing(input.durationSeconds);
    const names = paired.map((row) => row.scenario).filter((name) => name !== 'A/A');
    lines.push(
      `${names.join(' and ')} ran in turns with the ceiling, ${slices} slices of ${fixed(sliceSeconds, 1)} s a side ` +
        '(ceiling, scenario, scenario, ceiling, …) after 1 s of warm-up each, and each share is of the ceiling measured beside it; ' +
        "their p50 is the median of the slices' p50s and their p99 the highest slice's." +
        (paired.some((row) => row.scenario === 'A/A')
          ? " A/A is a second ceiling process measured the same way against the first: how far its share lands from 100% is how far this run could move S1's and S2's without any change in code."
          : '') +
        (input.rows.length > paired.length || input.originS2
          ? ` Other rows' share is of the mean of ${names.join("'s and ")}'s ceilings, ${fixed(ceilingRps, 0)} req/s.`
          : ''),
    );
  }
  if (input.argon2Rate) {
    const s3 = input.rows.find((row) => row.scenario === 'S3');
    const share = s3 ? ` S3 signs in ${fixed((s3.successesPerSecond / input.argon2Rate.verifiesPerSecond) * 100, 1)}% of that.` : '';
    const rate = input.argon2Rate;
    lines.push(
      `Raw argon2id verifies (${argon2Parameters()}, ${rate.lanes} lanes in a process of their own with npm start's memory settings): ${fixed(rate.verifiesPerSecond, 1)}/s, ` +
        `the mean of ${rate.slices.length} slices of ${fixed(rate.sliceSeconds, 1)} s taken in turns with S3's (raw, S3, S3, raw, …, after 1 s of S3 as warm-up; ${range(rate.slices, 1)}/s), ` +
        `each slice of S3 followed by a wait until gatehouse had finished the hashes it left (${range(rate.drainMs, 0)} ms).${share}`,
    );
    if (s3 && input.argon2Rate.split) lines.push(describeSplit(input.argon2Rate.split, s3));
  }
  for (const row of input.rows) {
    const statuses = Object.entries(row.statusCounts)
      .map(([status, count]) => `${status}×${count}`)
      .join(', ');
    lines.push(`${row.scenario} statuses: ${statuses || 'none'}${row.timeouts ? `; ${row.timeouts} timeouts` : ''}.`);
    if (row.alongside) {
      const along = Object.entries(row.alongside.statusCounts)
        .map(([status, count]) => `${status}×${count}`)
        .join(', ');
      lines.push(
        `S6 sign-ins alongside: ${fixed(row.alongside.successesPerSecond, 1)} 2xx/s, p99 ${fixed(row.alongside.p99Ms)} ms (${along}).`,
      );
    }
  }
  lines.push(...input.notes);
  const big = input.big ? renderBig(input.big, line) : { lines: [], json: null };
  lines.push(...big.lines);
  return {
    markdown: lines.join('\n'),
    json: {
      target: input.target,
      durationSeconds: input.durationSeconds,
      connections: input.connections,
      smoke: input.smoke,
      cores: cpus().length,
      at: new Date().toISOString(),
      ceiling: runs.length > 0 ? { requestsPerSecond: ceilingRps, runs } : null,
      argon2Rate: input.argon2Rate,
      originS2: input.originS2,
      scenarios: results.map(({ row, target }) => ({
        ...row,
        ofCeiling: shareOfCeiling(row, runs),
        target: target.text,
        met: target.met,
      })),
      notes: input.notes,
      ...(big.json ? { big: big.json } : {}),
    },
  };
}

function renderBig(
  big: NonNullable<ReportInput['big']>,
  line: (name: string, what: string, figures: Measured, ratio: string, target: string) => string,
): { lines: string[]; json: Record<string, unknown> } {
  const lines: string[] = [];
  const pages = big.deepPages.map((pair) => {
    const ratio = pair.deep.p99Ms / pair.first.p99Ms;
    return { ...pair, p99Ratio: ratio, met: ratio <= S5_MAX_P99_RATIO };
  });
  if (pages.length > 0) {
    lines.push(
      '',
      `S5: ${big.users} users on PostgreSQL${big.seeded ? `, seeded with INSERT … SELECT in ${fixed(big.seeded.seconds)} s` : ''}; ` +
        'Bearer GET /v1/users?limit=20, the first page and the page after the row at offset 90%, in turns in ' +
        `slices of about ${SLICE_SECONDS} s (p50 and p99: the slices' medians).`,
      '',
      '| scenario | what | req/s | 2xx/s | p50 ms | p99 ms | non-2xx | errors | peak RSS MB | deep p99 / first p99 | target |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const page of pages) {
      const sort = page.sort === 'created_at' ? 'default sort' : `sort=${page.sort}`;
      lines.push(line('S5', `first page, ${sort}`, page.first, '', ''));
      lines.push(
        line(
          'S5',
          `deep page (offset ${page.offset}), ${sort}`,
          page.deep,
          `${fixed(page.p99Ratio, 2)}×`,
          `p99 ≤ ${S5_MAX_P99_RATIO}× first page: ${verdict(page.met)}`,
        ),
      );
    }
  }
  const run = big.importRun;
  const seedRate = big.seeded && big.seeded.seconds > 0 ? big.seeded.users / big.seeded.seconds : null;
  const importMet = run ? run.status === 'completed' && run.usersPerSecond >= S7_MIN_USERS_PER_SECOND : null;
  if (run) {
    lines.push(
      '',
      '| scenario | what | users | created | skipped | failed | upload s | total s | users/s | peak RSS MB | target |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      `| S7 | POST /v1/imports, NDJSON with argon2id hashes (${fixed(run.uploadBytes / MB, 0)} MB) until completed | ${run.rows} | ${run.created} | ${run.skipped} | ${run.failed} | ` +
        `${fixed(run.uploadSeconds)} | ${fixed(run.totalSeconds)} | ${fixed(run.usersPerSecond, 0)} | ${fixed(big.importRssBytes / MB, 0)} | ` +
        `≥ ${S7_MIN_USERS_PER_SECOND} users/s: ${verdict(importMet === true)} |`,
    );
    if (seedRate !== null) {
      lines.push(
        '',
        `S7 against the database alone: S5's seed, in this run, inserted ${fixed(seedRate, 0)} users/s (its ANALYZE included) into the same table and ` +
          'indexes (one connection, INSERT … SELECT from generate_series: no events, no conflict checks, no Node.js work, ' +
          `into a table growing from empty where S7's grows from ${big.users}); S7 imported at ${fixed((run.usersPerSecond / seedRate) * 100)}% of that. ` +
          'The target is users a second, so it depends on the machine; this ratio says how near the database the import runs.',
      );
    }
  }
  return {
    lines,
    json: {
      users: big.users,
      seeded: big.seeded,
      S5: pages.map((page) => ({ ...page, target: `deep p99 ≤ ${S5_MAX_P99_RATIO}× first page p99` })),
      S7: run && {
        ...run,
        peakRssBytes: big.importRssBytes,
        target: `≥ ${S7_MIN_USERS_PER_SECOND} users/s`,
        met: importMet,
        seedUsersPerSecond: seedRate,
        ofSeedRate: seedRate === null ? null : run.usersPerSecond / seedRate,
      },
    },
  };
}
