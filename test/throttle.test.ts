// The sign-in throttle on its own (per-instance counters): how client addresses are counted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AppError } from '../src/http/errors.js';
import { createSignInThrottle, DEFAULT_THROTTLE_LIMITS } from '../src/modules/sessions/throttle.js';

const quiet = { warn() {}, info() {} };

async function blocked(attempt: Promise<unknown>): Promise<boolean> {
  try {
    await attempt;
    return false;
  } catch (error) {
    if (error instanceof AppError && error.code === 'too_many_requests') return true;
    throw error;
  }
}

test('ASVS 2.2.1: addresses of one IPv6 /64 share a counter; another /64 and IPv4 have their own', async () => {
  const throttle = createSignInThrottle({
    redis: null,
    keyPrefix: 'test:',
    logger: quiet,
    limits: { ...DEFAULT_THROTTLE_LIMITS, failuresPerUsernameAndIp: 2 },
  });
  for (const address of ['2001:db8::1', '2001:db8::2']) await (await throttle.begin('alice', address)).finish(false);
  assert.equal(await blocked(throttle.begin('alice', '2001:db8::ffff:1')), true, 'a third address of the same /64 is blocked');
  assert.equal(await blocked(throttle.begin('alice', '2001:db8:0:1::1')), false, 'another /64 is not');
  assert.equal(await blocked(throttle.begin('alice', '192.0.2.1')), false, 'an IPv4 address is its own client');
  assert.equal(await blocked(throttle.begin('alice', '::ffff:192.0.2.2')), false, 'an IPv4-mapped address counts as its IPv4 address');
});
