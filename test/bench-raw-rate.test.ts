// bench/lib/argon2-rate.ts: S3 is read against a raw rate measured with the memory settings gatehouse
// runs with (RESULTS, fifteenth round), in a process of its own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measureRawRate } from '../bench/lib/argon2-rate.js';
import { startCommand } from '../scripts/start-command.js';

test("the raw rate runs with npm start's memory settings and reports a rate", async () => {
  const expected = Object.fromEntries(Object.entries(startCommand().env).filter(([name]) => name.startsWith('MALLOC_')));
  assert.ok(Object.keys(expected).length >= 3, 'npm start sets the MALLOC_ settings');
  const rate = await measureRawRate(0.3);
  assert.deepEqual(rate.malloc, expected);
  assert.ok(rate.lanes >= 1);
  assert.ok(rate.verifiesPerSecond > 0, `${rate.verifiesPerSecond} verifies a second`);
});
