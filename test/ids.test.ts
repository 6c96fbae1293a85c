// UUIDv7 ids: RFC 9562 layout (version 7, variant 10), unique, and in creation order within the
// process, across the 4 KiB random pool's refills.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { uuidv7 } from '../src/lib/ids.js';

describe('uuidv7', () => {
  test('20,000 ids are well-formed, distinct and sorted in the order they were made', () => {
    const ids = Array.from({ length: 20_000 }, () => uuidv7());
    for (const id of ids.slice(0, 300)) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    // The random tails differ: no two ids share their last 8 bytes.
    assert.equal(new Set(ids.map((id) => id.slice(19))).size, ids.length);
  });
});
