// The streaming import readers on their own: byte-order marks, pieces split mid-character.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { type ParsedRow, parseCsv, parseNdjson } from '../src/modules/imports/parse.js';

async function all(batches: AsyncGenerator<ParsedRow[]>): Promise<ParsedRow[]> {
  const result: ParsedRow[] = [];
  for await (const batch of batches) result.push(...batch);
  return result;
}

test('an NDJSON file that starts with a UTF-8 byte-order mark reads its first row', async () => {
  const body = Buffer.from('\ufeff{"username":"bom"}\n{"username":"next"}\n', 'utf8');
  assert.deepEqual(await all(parseNdjson(Readable.from([body]))), [
    { rowNumber: 1, row: { username: 'bom' } },
    { rowNumber: 2, row: { username: 'next' } },
  ]);
});

test('a CSV file with a byte-order mark and pieces that split a character reads every row whole', async () => {
  const bytes = Buffer.from('\ufeffusername,display_name\r\nzoë,"Zoë, ""Z"""\r\n', 'utf8');
  const pieces = Array.from(bytes).map((byte) => Buffer.from([byte]));
  assert.deepEqual(await all(parseCsv(Readable.from(pieces))), [{ rowNumber: 1, row: { username: 'zoë', display_name: 'Zoë, "Z"' } }]);
});
