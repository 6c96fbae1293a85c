// bench/lib/report.ts: S7's rate is a number of users a second, so the report also reads it against
// the rate at which the same run's S5 seed inserted users (the database alone), a ratio that the
// machine's speed does not move as much.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ImportFigures } from '../bench/lib/import-rate.js';
import { type ReportInput, renderReport } from '../bench/lib/report.js';

const importRun: ImportFigures = {
  rows: 1000,
  created: 1000,
  skipped: 0,
  failed: 0,
  status: 'completed',
  uploadSeconds: 0.1,
  totalSeconds: 0.5,
  usersPerSecond: 2000,
  uploadBytes: 200_000,
};

function input(seeded: { users: number; seconds: number } | null): ReportInput {
  return {
    target: 'postgres',
    durationSeconds: 2,
    connections: 4,
    smoke: true,
    ceilingRuns: [],
    rows: [],
    argon2Rate: null,
    originS2: null,
    notes: [],
    big: { users: 1000, seeded, deepPages: [], importRun, importRssBytes: 100 * 1024 * 1024 },
  };
}

test("S7 is read against the S5 seed's insert rate of the same run, in the table's note and the JSON", () => {
  const { markdown, json } = renderReport(input({ users: 1000, seconds: 0.25 }));
  assert.match(markdown, /\| S7 \| .* \| 2000 \| 100 \| ≥ 20000 users\/s: MISSED \|/);
  assert.match(markdown, /S5's seed, in this run, inserted 4000 users\/s .*S7 imported at 50\.0% of that/);
  const s7 = (json.big as { S7: { seedUsersPerSecond: number; ofSeedRate: number } }).S7;
  assert.equal(s7.seedUsersPerSecond, 4000);
  assert.equal(s7.ofSeedRate, 0.5);
});

test('without a seed in the run (S7 alone), S7 has no such ratio', () => {
  const { markdown, json } = renderReport(input(null));
  assert.match(markdown, /\| S7 \|/);
  assert.doesNotMatch(markdown, /S5's seed/);
  assert.equal((json.big as { S7: { ofSeedRate: number | null } }).S7.ofSeedRate, null);
});
