// The README is the front door: its configuration and error tables must match the code.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { SETTINGS } from '../src/config.js';
import { ERROR_CATALOGUE } from '../src/http/errors.js';
import { commonPasswordCount } from '../src/modules/users/password-policy.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** The trimmed cells of a Markdown table row. */
function cells(line: string): string[] {
  return line
    .split('|')
    .slice(1, -1)
    .map((cell) => cell.trim());
}

function section(name: string): string {
  const match = new RegExp(`<!-- ${name}:start -->([\\s\\S]*?)<!-- ${name}:end -->`).exec(readme);
  assert.ok(match, `README has no ${name} section`);
  return match[1] ?? '';
}

test('the README configuration table lists every setting with its default and doc, in order', () => {
  const rows = section('settings')
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map(cells);
  const expected = SETTINGS.map((s) => [`\`${s.env}\``, s.default === null ? '(unset)' : `\`${s.default}\``, s.doc]);
  assert.deepEqual(rows, expected);
});

test('the README error table lists every code of the catalogue with its status', () => {
  const rows = section('errors')
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map(cells);
  assert.deepEqual(
    rows.map(([code, status]) => [code, status]),
    Object.entries(ERROR_CATALOGUE).map(([code, { status }]) => [`\`${code}\``, String(status)]),
  );
});

test('the shipped common-password list has at least 10,000 entries and the README gives its size', () => {
  const count = commonPasswordCount();
  assert.ok(count >= 10_000, `only ${count}`);
  assert.match(readme, new RegExp(count.toLocaleString('en-US')));
});
