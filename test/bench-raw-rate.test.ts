// bench/lib/argon2-rate.ts: S3 is read against a raw rate measured with the memory settings gatehouse
// runs with (RESULTS, fifteenth round), in a process of its own that stays up between measurements,
// so that S3 can take turns with it (RESULTS, sixteenth round).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startRawRate } from '../bench/lib/argon2-rate.js';
import { startCommand } from '../scripts/start-command.js';

test("the raw rate runs with npm start's memory settings, measures as often as asked, and stops", async () => {
  const expected = Object.fromEntries(Object.entries(startCommand().env).filter(([name]) => name.startsWith('MALLOC_')));
  assert.ok(Object.keys(expected).length >= 3, 'npm start sets the MALLOC_ settings');
  const raw = await startRawRate();
  try {
    for (const seconds of [0.2, 0.3]) {
      const rate = await raw.measure(seconds);
      assert.deepEqual(rate.malloc, expected);
      assert.ok(rate.lanes >= 1);
      assert.ok(rate.verifiesPerSecond > 0, `${rate.verifiesPerSecond} verifies a second`);
    }
  } finally {
    await raw.stop();
  }
  await assert.rejects(raw.measure(0.2), /exited/);
});
