// bin/compile.js: what bin/launch.js runs is src/ compiled to dist/, and never out of date.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
// @ts-expect-error: plain JavaScript without declarations (bin/ runs before any TypeScript loader)
import { compile } from '../bin/compile.js';

const compileIn = compile as (root: string) => Promise<string>;

describe('compiling src/ to dist/ (bin/compile.js)', () => {
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-compile-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const write = (path: string, text: string) => {
    mkdirSync(join(root, 'src', path, '..'), { recursive: true });
    writeFileSync(join(root, 'src', path), text);
  };
  const run = (entry: string) => spawnSync(process.execPath, [entry], { encoding: 'utf8' });

  test('compiles every TypeScript file, copies the other files, and the result runs without a loader', async () => {
    write('cli.ts', "import { greet } from './lib/greet.js';\nconst name: string = 'gatehouse';\nconsole.log(greet(name));\n");
    write('lib/greet.ts', "export interface Named { name: string }\nexport const greet = (name: string): string => 'hello ' + name;\n");
    write('admin/assets/app.js', 'export const page = 1;\n');
    const entry = await compileIn(root);
    assert.equal(entry, join(root, 'dist', 'cli.js'));
    assert.equal(run(entry).stdout, 'hello gatehouse\n');
    assert.equal(readFileSync(join(root, 'dist/admin/assets/app.js'), 'utf8'), 'export const page = 1;\n');
  });

  test('leaves unchanged files alone, and compiles a changed file again, even one with an older mtime', async () => {
    const output = join(root, 'dist/lib/greet.js');
    const written = statSync(output).mtimeMs;
    await compileIn(root);
    assert.equal(statSync(output).mtimeMs, written, 'nothing changed, nothing written');
    write('lib/greet.ts', "export const greet = (name: string): string => 'hi ' + name + '!';\n");
    // As a checkout of an older version can leave it: the source older than its output.
    utimesSync(join(root, 'src/lib/greet.ts'), new Date(written - 60_000), new Date(written - 60_000));
    assert.equal(run(await compileIn(root)).stdout, 'hi gatehouse!\n');
  });

  test('removes the output of a source that is gone, and compiles a missing output again', async () => {
    write('old.ts', 'export const old = 1;\n');
    await compileIn(root);
    assert.ok(existsSync(join(root, 'dist/old.js')));
    rmSync(join(root, 'src/old.ts'));
    rmSync(join(root, 'dist/cli.js'));
    const entry = await compileIn(root);
    assert.equal(existsSync(join(root, 'dist/old.js')), false);
    assert.equal(run(entry).stdout, 'hi gatehouse!\n');
  });

  test('a dist/ compiled with other options is compiled again, whole', async () => {
    const manifestPath = join(root, 'dist/.sources.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { options: Record<string, unknown> };
    writeFileSync(manifestPath, JSON.stringify({ ...manifest, options: { ...manifest.options, target: 'node18' } }));
    writeFileSync(join(root, 'dist/lib/greet.js'), 'export const greet = () => "stale";\n');
    assert.equal(run(await compileIn(root)).stdout, 'hi gatehouse!\n');
  });

  test('a source that does not compile is an error, not a stale dist/', async () => {
    write('lib/greet.ts', 'export const greet = (name: string =>;\n');
    await assert.rejects(compileIn(root));
    write('lib/greet.ts', "export const greet = (name: string): string => 'hello again ' + name;\n");
    assert.equal(run(await compileIn(root)).stdout, 'hello again gatehouse\n');
  });
});
