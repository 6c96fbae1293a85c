// Compiles src/ (TypeScript) to dist/ (JavaScript in the same layout) with esbuild, file by file, and
// only the files that changed since the last compile; other files under src/ (the admin console's
// assets) are copied. bin/launch.js runs dist/ so that no TypeScript loader runs beside the
// server: tsx's loader thread alone holds about 29 MB (bench/RESULTS.md, fifth round).
// Each file is checked against the size and mtime it had when it was compiled (dist/.sources.json),
// so a checkout of older files is noticed too; other compile options compile everything again.
// Outputs are written to a temporary name and renamed, so instances starting together from one
// checkout never read half a file.
// `node bin/compile.js` compiles and exits (the image does this as it is built).
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MANIFEST = '.sources.json';
/** How each file is compiled; a manifest written with other options compiles everything again. */
const OPTIONS = {
  loader: 'ts',
  format: 'esm',
  target: 'node20',
  // The sources' own lines in stack traces when node runs with --enable-source-maps; the maps
  // name the files in src/ rather than carry their text.
  sourcemap: 'inline',
  sourcesContent: false,
};

/** Every file under `dir`, as paths relative to it with forward slashes. */
function filesUnder(dir) {
  const found = [];
  const walk = (current) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) found.push(relative(dir, path).split(sep).join('/'));
    }
  };
  walk(dir);
  return found;
}

function outputName(source) {
  return source.endsWith('.ts') ? `${source.slice(0, -3)}.js` : source;
}

function writeAtomically(path, content) {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, content);
  renameSync(temporary, path);
}

/**
 * Brings dist/ up to date with src/ and returns the path of dist/cli.js. Throws what the file
 * system throws when dist/ cannot be written (a read-only install): the caller then runs the
 * sources through tsx instead.
 */
export async function compile(root = ROOT) {
  const src = join(root, 'src');
  const dist = join(root, 'dist');
  let previous = {};
  try {
    const manifest = JSON.parse(readFileSync(join(dist, MANIFEST), 'utf8'));
    if (JSON.stringify(manifest.options) === JSON.stringify(OPTIONS)) previous = manifest.files;
  } catch {
    // First compile, or an unreadable manifest: everything is compiled again.
  }
  const sources = filesUnder(src).filter((file) => !file.endsWith('.d.ts'));
  const current = {};
  const stale = [];
  for (const file of sources) {
    const { size, mtimeMs } = statSync(join(src, file));
    current[file] = [size, mtimeMs];
    const before = previous[file];
    let present = true;
    try {
      statSync(join(dist, outputName(file)));
    } catch {
      present = false;
    }
    if (!present || !before || before[0] !== size || before[1] !== mtimeMs) stale.push(file);
  }
  const wanted = new Set(sources.map(outputName));
  const leftovers = Object.keys(previous)
    .map(outputName)
    .filter((output) => !wanted.has(output));
  if (stale.length === 0 && leftovers.length === 0) return join(dist, 'cli.js');

  let esbuild = null;
  try {
    for (const file of stale) {
      const path = join(src, file);
      if (!file.endsWith('.ts')) {
        writeAtomically(join(dist, file), readFileSync(path));
        continue;
      }
      esbuild ??= await import('esbuild');
      const { code } = await esbuild.transform(readFileSync(path, 'utf8'), { ...OPTIONS, sourcefile: path });
      writeAtomically(join(dist, outputName(file)), code);
    }
  } finally {
    // esbuild answers from a child process it keeps until told to stop.
    await esbuild?.stop();
  }
  for (const output of leftovers) rmSync(join(dist, output), { force: true });
  writeAtomically(join(dist, MANIFEST), JSON.stringify({ options: OPTIONS, files: current }));
  return join(dist, 'cli.js');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await compile();
}
