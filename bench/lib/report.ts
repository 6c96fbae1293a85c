// The runner's report: a Markdown table (each scenario as a share of the ceiling, with the issue's
// targets marked met or missed) and the same figures as JSON.
import { cpus } from 'node:os';
import type { PagePair } from './deep-page.js';
import type { ImportFigures } from './import-rate.js';
import type { LoadFigures } from './load.js';

export type Measured = LoadFigures & { peakRssBytes: number };
export interface Row extends Measured {
  scenario: string;
  what: string;
  /** S6: the sign-in load that ran alongside. */
  alongside?: LoadFigures;
}

/** The raw rate S3 is read against: the mean of the runs just before and just after its load. */
export interface Argon2Rate {
  verifiesPerSecond: number;
  lanes: number;
  before: number;
  after: number;
}

export interface ReportInput {
  target: string;
  durationSeconds: number;
  connections: number;
  smoke: boolean;
  /**
   * The ceiling's runs: one before gatehouse's scenarios and, when S1 or S2 ran, one more right after
   * them. Every ratio is read against their mean.
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

function targetOf(row: Row, input: ReportInput): { text: string; met: boolean | null } {
  const ofCeiling = row.requestsPerSecond / ceilingRate(input.ceilingRuns);
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
      return { text: `≥ 85% of raw argon2id (${fixed(share * 100, 0)}%), p99 ≤ 500 ms: ${verdict(met)}`, met };
    }
    case 'S6': {
      const met = row.p99Ms <= 50;
      return { text: `S1 p99 ≤ 50 ms: ${verdict(met)}`, met };
    }
    default:
      return { text: 'no target', met: null };
  }
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
  const readAgainst = input.rows.filter((row) => row.scenario === 'S1' || row.scenario === 'S2').map((row) => row.scenario);
  const after = `again after ${readAgainst.join(' and ')}`;
  runs.forEach((run, i) => {
    const what = runs.length === 1 ? 'bare Fastify 5 GET /' : `bare Fastify 5 GET /, ${i === 0 ? 'before gatehouse' : after}`;
    lines.push(line('ceiling', what, run, `${fixed((run.requestsPerSecond / ceilingRps) * 100, 1)}%`, ''));
  });
  const results = input.rows.map((row) => ({ row, target: targetOf(row, input) }));
  for (const { row, target } of results)
    lines.push(line(row.scenario, row.what, row, `${fixed((row.requestsPerSecond / ceilingRps) * 100, 1)}%`, target.text));
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
  if (runs.length > 1)
    lines.push(
      `Ceiling: ${fixed(ceilingRps, 0)} req/s, the mean of ${runs.map((run) => fixed(run.requestsPerSecond, 0)).join(' and ')} (before gatehouse and ${after}); every share of the ceiling is of the mean.`,
    );
  if (input.argon2Rate) {
    const s3 = input.rows.find((row) => row.scenario === 'S3');
    const share = s3 ? ` S3 signs in ${fixed((s3.successesPerSecond / input.argon2Rate.verifiesPerSecond) * 100, 0)}% of that.` : '';
    lines.push(
      `Raw argon2id verifies (m=19456 t=2 p=1, ${input.argon2Rate.lanes} lanes in-process): ${fixed(input.argon2Rate.verifiesPerSecond, 1)}/s, the mean of ${fixed(input.argon2Rate.before, 1)}/s just before S3 and ${fixed(input.argon2Rate.after, 1)}/s just after.${share}`,
    );
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
        ofCeiling: row.requestsPerSecond / ceilingRps,
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
        'Bearer GET /v1/users?limit=20, first page then the page after the row at offset 90%.',
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
  }
  return {
    lines,
    json: {
      users: big.users,
      seeded: big.seeded,
      S5: pages.map((page) => ({ ...page, target: `deep p99 ≤ ${S5_MAX_P99_RATIO}× first page p99` })),
      S7: run && { ...run, peakRssBytes: big.importRssBytes, target: `≥ ${S7_MIN_USERS_PER_SECOND} users/s`, met: importMet },
    },
  };
}
