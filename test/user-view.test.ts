// The user representation passes a stored date through unchanged when it is already in the API's
// form (users.view.ts): that shortcut must give exactly what parsing and re-printing gives, for every
// day of the calendar, including the days a month does not have.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { UserRow } from '../src/modules/users/users.repository.js';
import { makeUserView } from '../src/modules/users/users.view.js';

const ROW: UserRow = {
  id: '019acb00-7000-8000-0000-000000000001',
  username: 'calendar',
  email: 'calendar@example.com',
  display_name: null,
  roles: 'user',
  status: 'active',
  password_hash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA',
  created_at: '2026-11-29T06:00:00.000Z',
  updated_at: '2026-11-29T06:00:00.000Z',
  last_login_at: null,
  last_seen_at: null,
};

test('every day of leap and common years comes out as Date would print it', () => {
  const two = (n: number) => String(n).padStart(2, '0');
  let passedThrough = 0;
  for (const year of [2024, 2026, 2100, 2000]) {
    for (let month = 1; month <= 12; month++) {
      for (let day = 1; day <= 31; day++) {
        const stored = `${year}-${two(month)}-${two(day)}T23:59:59.999Z`;
        const expected = new Date(stored).toISOString();
        const view = makeUserView({ ...ROW, created_at: stored, last_login_at: stored });
        assert.equal(view.created_at, expected, stored);
        assert.equal(view.last_login_at, expected, stored);
        if (expected === stored) passedThrough += 1;
      }
    }
  }
  // 365 + 366 + 365 + 366 real days, each given back as it was stored.
  assert.equal(passedThrough, 1462);
});

test('other forms of a date are rewritten to milliseconds and Z', () => {
  assert.equal(makeUserView({ ...ROW, created_at: '2026-11-29T06:00:00Z' }).created_at, '2026-11-29T06:00:00.000Z');
  assert.equal(makeUserView({ ...ROW, created_at: '2026-11-30T07:00:00.000+01:00' }).created_at, '2026-11-30T06:00:00.000Z');
  assert.equal(makeUserView({ ...ROW, created_at: new Date('2026-12-31T00:00:00.000Z') }).created_at, '2026-12-31T00:00:00.000Z');
});
