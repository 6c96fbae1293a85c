// deploy/Dockerfile and .dockerignore, checked without Docker: the Dockerfile linter (dockerfile-utils),
// the stages and runtime settings, and the files it copies, laid out and served as the image would.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix, relative } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Instruction } from 'dockerfile-ast';
import { validate as lintDockerfile } from 'dockerfile-utils';
import {
  args,
  compose,
  DOCKERFILE,
  dockerfile,
  dockerfileUser,
  execForm,
  finalStageOnly,
  finalStageStart,
  freePort,
  instructions,
  REPO,
  read,
  run,
  SETTING_NAMES,
} from './helpers/deploy.js';

// Not gatehouse settings: the memory settings node and glibc read at start (bin/launch.js).
const RUNTIME_NAMES = new Set(['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'NODE_OPTIONS']);

/** .dockerignore's rules: the last pattern that matches a path or one of its parents decides. */
function dockerignore(): (path: string) => boolean {
  const rules = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const exclude = !line.startsWith('!');
      const pattern = posix.normalize(line.replace(/^!/, '').replace(/^\//, ''));
      const source = pattern
        .split(/(\*\*\/|\*\*|\*|\?)/)
        .map((part) => ({ '**/': '(.*/)?', '**': '.*', '*': '[^/]*', '?': '[^/]' })[part] ?? part.replace(/[.+^${}()|[\]\\]/g, '\\$&'))
        .join('');
      return { exclude, regex: new RegExp(`^${source}$`) };
    });
  return (path) => {
    const parts = path.split('/');
    const candidates = parts.map((_part, index) => parts.slice(0, index + 1).join('/'));
    let excluded = false;
    for (const rule of rules) if (candidates.some((candidate) => rule.regex.test(candidate))) excluded = rule.exclude;
    return excluded;
  };
}

/** The COPY instructions of the final stage that take files from the build context. */
function contextCopies(): { sources: string[]; destination: string }[] {
  const finalStageLine = instructions[finalStageStart]?.getRange().start.line ?? 0;
  return dockerfile
    .getCOPYs()
    .filter((copy) => copy.getRange().start.line > finalStageLine && copy.getFromFlag() === null)
    .map((copy) => {
      const values = args(copy);
      return { sources: values.slice(0, -1), destination: values.at(-1) as string };
    });
}

describe('Dockerfile', () => {
  test('has no problem the Dockerfile linter (dockerfile-utils) reports', () => {
    const problems = lintDockerfile(DOCKERFILE).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    assert.deepEqual(problems, []);
    assert.notDeepEqual(lintDockerfile('FROM node:20\nHEALTHCHECK --intervall=5s CMD true\n'), [], 'the linter finds a bad flag');
  });

  test('builds in stages on node:20-bookworm-slim and the runtime stage has no build tools', () => {
    const froms = dockerfile.getFROMs();
    assert.ok(froms.length >= 2, 'multi-stage');
    const base = dockerfile
      .getInitialARGs()
      .map((arg) => args(arg)[0] as string)
      .find((value) => value.startsWith('NODE_IMAGE='));
    assert.equal(base, 'NODE_IMAGE=node:20-bookworm-slim');
    for (const from of froms) assert.match(from.getImageName() ?? '', /^\$\{NODE_IMAGE\}$/);
    assert.equal(froms.at(-1)?.getBuildStage(), 'runtime');
    const runtimeRuns = finalStageOnly('RUN').map((instruction) => instruction.getArgumentsContent());
    for (const tool of ['apt-get', 'g++', 'make', 'python3', 'npm']) {
      assert.ok(!runtimeRuns.some((line) => line?.includes(tool)), `no ${tool} in the runtime stage`);
    }
    const install = instructions.slice(0, finalStageStart).find((instruction) => instruction.getArgumentsContent()?.includes('npm ci'));
    assert.match(install?.getArgumentsContent() ?? '', /npm ci --omit=dev/);
  });

  test('runs as a numeric non-root user, exposes PORT, stops on SIGTERM, and runs gatehouse serve', () => {
    const [uid] = dockerfileUser().split(':');
    assert.match(uid as string, /^[1-9]\d*$/, 'numeric and not 0, so that runAsNonRoot can verify it');
    const env = Object.fromEntries(
      finalStageOnly('ENV').flatMap((instruction) => args(instruction).map((pair) => pair.split(/=(.*)/s).slice(0, 2))),
    );
    // Besides gatehouse's settings, only the memory settings that node and glibc read at start.
    assert.deepEqual(
      Object.keys(env).filter((name) => !SETTING_NAMES.has(name) && !RUNTIME_NAMES.has(name)),
      [],
      'ENV names gatehouse does not read',
    );
    const start = (JSON.parse(read('package.json')) as { scripts: { start: string } }).scripts.start;
    assert.equal(
      start,
      `MALLOC_ARENA_MAX=${env.MALLOC_ARENA_MAX} MALLOC_MMAP_THRESHOLD_=${env.MALLOC_MMAP_THRESHOLD_} MALLOC_TRIM_THRESHOLD_=${env.MALLOC_TRIM_THRESHOLD_} exec node ${env.NODE_OPTIONS} bin/gatehouse.cjs serve`,
      'npm start as the image',
    );
    assert.equal(env.HOST, '0.0.0.0');
    assert.deepEqual(args(finalStageOnly('EXPOSE')[0] as Instruction), [env.PORT]);
    assert.deepEqual(args(finalStageOnly('STOPSIGNAL')[0] as Instruction), ['SIGTERM']);
    assert.deepEqual(execForm(finalStageOnly('CMD')[0] as Instruction), ['node', 'bin/gatehouse.cjs', 'serve']);
    assert.equal(finalStageOnly('HEALTHCHECK').length, 1);
  });

  test('.dockerignore keeps host node_modules, data, tests, benchmarks, .git, artifacts and .env out', () => {
    const excluded = dockerignore();
    for (const path of [
      'node_modules',
      'node_modules/argon2/package.json',
      'data/gatehouse.db',
      'test/deploy-image.test.ts',
      'bench/run.ts',
      '.git/HEAD',
      'test-artifacts/admin.png',
      '.env',
      'deploy/.env',
    ]) {
      assert.ok(excluded(path), `${path} stays out of the build context`);
    }
  });

  test('copies only files that exist and that .dockerignore lets into the build context', () => {
    const excluded = dockerignore();
    const copies = contextCopies();
    assert.ok(copies.length > 0);
    for (const source of copies.flatMap((copy) => copy.sources)) {
      assert.ok(existsSync(join(REPO, source)), `${source} exists`);
      assert.ok(!excluded(source), `${source} is in the build context`);
    }
  });

  test('the runtime imports only production dependencies (npm ci --omit=dev installs them)', () => {
    const manifest = JSON.parse(read('package.json'));
    const production = new Set(Object.keys(manifest.dependencies));
    const missing = new Set<string>();
    const scan = (dir: string) => {
      for (const entry of readdirSync(join(REPO, dir), { withFileTypes: true })) {
        const path = `${dir}/${entry.name}`;
        if (entry.isDirectory()) scan(path);
        else if (/\.(ts|js|mjs)$/.test(entry.name)) {
          const source = readFileSync(join(REPO, path), 'utf8');
          const specifiers = [
            ...source.matchAll(/^\s*(?:import|export)\s+(?!type\s)[^;]*?\bfrom\s+'([^']+)'/gm),
            ...source.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
            ...source.matchAll(/^\s*import\s+'([^']+)'/gm),
          ].map((match) => match[1] as string);
          for (const specifier of specifiers) {
            if (specifier.startsWith('.') || specifier.startsWith('node:')) continue;
            const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] as string);
            if (!production.has(name)) missing.add(`${name} (${path})`);
          }
        }
      }
    };
    for (const source of contextCopies().flatMap((copy) => copy.sources)) {
      if (statSync(join(REPO, source)).isDirectory()) scan(source);
    }
    assert.deepEqual([...missing], []);
  });

  describe('the files the image holds', () => {
    // The final stage's context COPYs laid out in a directory standing for WORKDIR, with the
    // checkout's node_modules standing for the deps stage (no npm ci here). RUN lines do not run.
    const workdir = mkdtempSync(join(tmpdir(), 'gatehouse-image-'));
    after(() => rmSync(workdir, { recursive: true, force: true }));

    test('serve gatehouse, which answers the HEALTHCHECK command and stops cleanly on SIGTERM', async () => {
      const excluded = dockerignore();
      const imageRoot = args(finalStageOnly('WORKDIR')[0] as Instruction)[0] as string;
      for (const { sources, destination } of contextCopies()) {
        for (const source of sources) {
          const target =
            sources.length > 1 || destination.endsWith('/') ? join(workdir, destination, basename(source)) : join(workdir, destination);
          cpSync(join(REPO, source), target, {
            recursive: true,
            filter: (path) => !excluded(relative(REPO, path)) || path === join(REPO, source),
          });
        }
      }
      symlinkSync(join(REPO, 'node_modules'), join(workdir, 'node_modules'));

      const imageEnv = Object.fromEntries(
        finalStageOnly('ENV').flatMap((instruction) => args(instruction).map((pair) => pair.split(/=(.*)/s).slice(0, 2))),
      ) as Record<string, string>;
      const databaseUrl = (imageEnv.DATABASE_URL as string).replace(imageRoot, workdir);
      mkdirSync(dirname(databaseUrl.replace(/^sqlite:/, '')), { recursive: true });
      const port = String(await freePort());
      const inherited = Object.fromEntries(
        Object.entries(process.env).filter(([name]) => !SETTING_NAMES.has(name) && name !== 'NODE_TEST_CONTEXT'),
      );
      const env = {
        ...inherited,
        ...imageEnv,
        DATABASE_URL: databaseUrl,
        PORT: port,
        // Loopback here, where the test runs; the image listens on 0.0.0.0.
        HOST: '127.0.0.1',
        GATEHOUSE_PASSWORD_HASH_PROFILE: 'test',
        GATEHOUSE_LOG_LEVEL: 'warn',
      };
      const [command, ...commandArgs] = execForm(finalStageOnly('CMD')[0] as Instruction);
      assert.equal(command, 'node');
      const server = spawn(process.execPath, commandArgs, { cwd: workdir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      server.stdout.on('data', (chunk) => {
        output += chunk;
      });
      server.stderr.on('data', (chunk) => {
        output += chunk;
      });
      const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));

      const [, ...healthcheck] = execForm(finalStageOnly('HEALTHCHECK')[0] as Instruction);
      const healthy = () =>
        run(process.execPath, healthcheck, { env: { PATH: process.env.PATH, PORT: port } }).then(
          () => true,
          () => false,
        );
      try {
        const deadline = Date.now() + 30_000;
        while (!(await healthy())) {
          assert.equal(server.exitCode, null, `gatehouse exited:\n${output}`);
          assert.ok(Date.now() < deadline, `the HEALTHCHECK never passed:\n${output}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        // compose.yaml's own check asks /readyz on the container port.
        const [, ...readyCheck] = compose.services['gatehouse-1'].healthcheck.test as string[];
        await run(
          process.execPath,
          readyCheck.slice(1).map((arg) => arg.replace(':8080/', `:${port}/`)),
        );
      } finally {
        server.kill(args(finalStageOnly('STOPSIGNAL')[0] as Instruction)[0] as NodeJS.Signals);
      }
      assert.equal(await exited, 0, `exit status after SIGTERM:\n${output}`);
      assert.equal(await healthy(), false, 'the HEALTHCHECK fails once gatehouse is gone');
    });
  });
});
