// PostgreSQL timestamptz text is turned into the API's RFC 3339 form without a Date in between
// (database.ts); it must print exactly what the Date path printed, in any session time zone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { timestamptzToIso } from '../src/db/database.js';

test('UTC text is rewritten to milliseconds and Z, as toISOString prints it', () => {
  assert.equal(timestamptzToIso('2026-11-28 04:10:00.123+00'), '2026-11-28T04:10:00.123Z');
  assert.equal(timestamptzToIso('2026-11-28 04:10:00+00'), '2026-11-28T04:10:00.000Z');
  assert.equal(timestamptzToIso('2026-11-28 04:10:00.1+00'), '2026-11-28T04:10:00.100Z');
  // Microseconds are cut to milliseconds, as a Date would hold them.
  assert.equal(timestamptzToIso('1999-01-02 23:59:59.999999+00'), '1999-01-02T23:59:59.999Z');
});

test('other offsets go through the Date path and come out in UTC', () => {
  assert.equal(timestamptzToIso('2026-11-28 05:10:00.123+01'), '2026-11-28T04:10:00.123Z');
  assert.equal(timestamptzToIso('2026-11-28 00:40:00.1-03:30'), '2026-11-28T04:10:00.100Z');
});

test('what is not a date is passed through as it came', () => {
  assert.equal(timestamptzToIso('infinity'), 'infinity');
});
