// Generates the typed client's inputs from the app itself: the OpenAPI document that the server
// serves at /openapi.json, and its TypeScript types (openapi-typescript). `--check` regenerates into
// a temporary directory and fails, with a summary of what changed, when src/client is out of date.
//   node --import tsx scripts/generate-client.ts [--check]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import openapiTS, { astToString, COMMENT_HEADER, type OpenAPI3 } from 'openapi-typescript';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/http/logger.js';
import { createServices } from '../src/services.js';

const REPO = new URL('..', import.meta.url).pathname;
const CLIENT_DIR = join(REPO, 'src/client');
const DOCUMENT = 'openapi.json';
const TYPES = 'schema.d.ts';

/** The document of the app that `serve` builds, on a throwaway SQLite database. */
async function openApiDocument(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-client-'));
  // Defaults only, not this shell's environment: the document must not depend on who generates it.
  const config = loadConfig({}, { databaseUrl: `sqlite:${join(dir, 'openapi.db')}`, passwordHashProfile: 'test', logLevel: 'silent' });
  const logger = createLogger(config);
  const services = await createServices(config, logger);
  try {
    const app = await buildApp(services, logger);
    try {
      await app.ready();
      return app.swagger() as unknown as Record<string, unknown>;
    } finally {
      await app.close();
    }
  } finally {
    await services.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Objects with their keys sorted at every depth, so moving a route's registration does not churn the file. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
  );
}

/** The text as Biome would write it at that path, so that the generated files pass `npm run lint`. */
function biomeFormat(text: string, path: string): string {
  const biome = createRequire(import.meta.url).resolve('@biomejs/biome/bin/biome');
  const result = spawnSync(process.execPath, [biome, 'format', `--stdin-file-path=${path}`], { cwd: REPO, input: text, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`biome could not format ${path}: ${result.stderr}`);
  return result.stdout;
}

async function generate(outDir: string): Promise<void> {
  const document = sortKeys(await openApiDocument()) as Record<string, unknown>;
  const types = astToString(await openapiTS(document as unknown as OpenAPI3, { silent: true }));
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, DOCUMENT), biomeFormat(`${JSON.stringify(document, null, 2)}\n`, `src/client/${DOCUMENT}`));
  writeFileSync(join(outDir, TYPES), biomeFormat(COMMENT_HEADER + types, `src/client/${TYPES}`));
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

/** "METHOD /path" -> operation JSON, and "schema Name" -> schema JSON, to name what changed. */
function parts(text: string | null): Map<string, string> {
  const named = new Map<string, string>();
  if (text === null) return named;
  const document = JSON.parse(text) as {
    paths?: Record<string, Record<string, unknown>>;
    components?: { schemas?: Record<string, unknown> };
  };
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const method of METHODS) if (item[method]) named.set(`${method.toUpperCase()} ${path}`, JSON.stringify(item[method]));
  }
  for (const [name, schema] of Object.entries(document.components?.schemas ?? {})) named.set(`schema ${name}`, JSON.stringify(schema));
  return named;
}

function documentChanges(checkedIn: string | null, fresh: string): string[] {
  const before = parts(checkedIn);
  const now = parts(fresh);
  const added = [...now.keys()].filter((key) => !before.has(key));
  const removed = [...before.keys()].filter((key) => !now.has(key));
  const changed = [...now.keys()].filter((key) => before.has(key) && before.get(key) !== now.get(key));
  const lines: string[] = [];
  if (added.length > 0) lines.push(`added: ${added.join(', ')}`);
  if (removed.length > 0) lines.push(`removed: ${removed.join(', ')}`);
  if (changed.length > 0) lines.push(`changed: ${changed.join(', ')}`);
  if (lines.length === 0) lines.push('changed outside paths and schemas (info, security schemes, ...)');
  return lines;
}

/** Lines only in the fresh file and only in the checked-in one, and the first line that differs. */
function lineChanges(checkedIn: string | null, fresh: string): string {
  if (checkedIn === null) return 'missing: it has never been generated';
  const oldLines = checkedIn.split('\n');
  const newLines = fresh.split('\n');
  const count = (lines: string[]) => lines.reduce((map, line) => map.set(line, (map.get(line) ?? 0) + 1), new Map<string, number>());
  const oldCounts = count(oldLines);
  const newCounts = count(newLines);
  let plus = 0;
  let minus = 0;
  for (const [line, n] of newCounts) plus += Math.max(0, n - (oldCounts.get(line) ?? 0));
  for (const [line, n] of oldCounts) minus += Math.max(0, n - (newCounts.get(line) ?? 0));
  const first = newLines.findIndex((line, i) => line !== oldLines[i]);
  return `+${plus} -${minus} lines, first difference at line ${(first === -1 ? newLines.length : first) + 1}`;
}

async function check(): Promise<boolean> {
  const fresh = mkdtempSync(join(tmpdir(), 'gatehouse-client-check-'));
  try {
    await generate(fresh);
    const report: string[] = [];
    for (const name of [DOCUMENT, TYPES]) {
      const checkedInPath = join(CLIENT_DIR, name);
      const checkedIn = existsSync(checkedInPath) ? readFileSync(checkedInPath, 'utf8') : null;
      const regenerated = readFileSync(join(fresh, name), 'utf8');
      if (checkedIn === regenerated) continue;
      report.push(`  ${relative(REPO, checkedInPath)}: ${lineChanges(checkedIn, regenerated)}`);
      if (name === DOCUMENT) for (const line of documentChanges(checkedIn, regenerated)) report.push(`    ${line}`);
    }
    if (report.length === 0) {
      process.stdout.write('client:check: src/client matches the route schemas\n');
      return true;
    }
    process.stderr.write(
      `client:check: src/client is out of date with the route schemas:\n${report.join('\n')}\n` +
        'Run `npm run client:generate` and commit the result.\n',
    );
    return false;
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
}

if (process.argv.includes('--check')) {
  if (!(await check())) process.exitCode = 1;
} else {
  await generate(CLIENT_DIR);
  process.stdout.write(`client:generate: wrote src/client/${DOCUMENT} and src/client/${TYPES}\n`);
}
