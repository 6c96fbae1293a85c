// The machine's raw argon2id rate with gatehouse's live parameters: one verify loop per core, in this
// process, for a fixed time. S3 (sign-in over HTTP) is read as a share of it.
import { availableParallelism } from 'node:os';
import argon2 from 'argon2';
import { HASH_PROFILES } from '../../src/modules/sessions/passwords.js';

export async function measureArgon2VerifiesPerSecond(durationSeconds: number): Promise<{ verifiesPerSecond: number; lanes: number }> {
  const options = { type: argon2.argon2id as 2, ...HASH_PROFILES.owasp };
  const hash = await argon2.hash('bench-password-long-enough', options);
  await argon2.verify(hash, 'bench-password-long-enough'); // warm up
  const lanes = availableParallelism();
  const started = performance.now();
  const deadline = started + durationSeconds * 1000;
  let verifies = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (performance.now() < deadline) {
        await argon2.verify(hash, 'bench-password-long-enough');
        verifies += 1;
      }
    }),
  );
  return { verifiesPerSecond: verifies / ((performance.now() - started) / 1000), lanes };
}
