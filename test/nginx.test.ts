// The shipped nginx config (deploy/nginx/gatehouse.conf), rendered as the cluster harness renders
// it, in front of three small stand-in instances: nginx -t accepts it, and it does what its
// comments promise (retries, body limits, the edge rate limit, caching, forwarded headers). Needs
// the nginx binary: skipped outside CI when it is missing, a failure under CI=true.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type NginxLayout, nginxLayout, nginxPid, startNginx, testNginxConfig, writeNginxConfig } from '../scripts/cluster/nginx.js';
import { findNginx, freePort, freePorts, signal, waitForExit } from '../scripts/cluster/system.js';

const REQUIRED = process.env.CI === 'true';
const nginx = findNginx();

function skipReason(): string | false {
  if (nginx) return false;
  if (REQUIRED) throw new Error('nginx is required here (CI) but is not installed: apt-get install nginx');
  process.stderr.write('# nginx is not installed: the nginx config tests are SKIPPED\n');
  return 'nginx is not installed';
}

interface Seen {
  instance: number;
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  bodyBytes: number;
}

/** A stand-in for one gatehouse instance: answers by path, records what reached it. */
function standIn(instance: number, seen: Seen[], behaviour: { crash: boolean }): Server {
  return createServer((request, reply) => {
    let bodyBytes = 0;
    request.on('data', (chunk: Buffer) => {
      bodyBytes += chunk.length;
    });
    request.on('end', () => {
      seen.push({ instance, method: request.method ?? '', url: request.url ?? '', headers: request.headers, bodyBytes });
      // An instance that dies with the request in hand: the connection drops, no answer.
      if (behaviour.crash) return request.socket.destroy();
      const publicDocument = request.url === '/openapi.json';
      reply.writeHead(request.method === 'POST' ? 201 : 200, {
        'content-type': 'application/json',
        // The API path claims to be cacheable too, to show nginx never caches the API anyway.
        'cache-control': publicDocument || request.url === '/v1/users/cacheable' ? 'public, max-age=60' : 'no-store',
        'x-request-id': String(request.headers['x-request-id']),
      });
      reply.end(JSON.stringify({ instance, bodyBytes }));
    });
  });
}

describe('the shipped nginx config', { skip: skipReason() }, () => {
  let dir = '';
  let layout: NginxLayout;
  let base = '';
  const seen: Seen[] = [];
  const crashing = { crash: false };
  const servers: Server[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-nginx-test-'));
    // nginx's workers (an unprivileged user when started as root) write the cache under it.
    chmodSync(dir, 0o755);
    layout = nginxLayout(dir);
    const ports = await freePorts(3);
    // Instance 1 crashes on every request, 2 and 3 answer.
    for (const [i, port] of ports.entries()) {
      const server = standIn(i + 1, seen, i === 0 ? crashing : { crash: false });
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      servers.push(server);
    }
    const listenPort = await freePort();
    // The shipped edge rate (50/s, burst 100), not the harness's raised one.
    writeNginxConfig(layout, { upstreamPorts: ports, listenPort, ratePerSecond: 50 });
    await startNginx(nginx ?? '', layout);
    base = `http://127.0.0.1:${listenPort}`;
  });

  after(async () => {
    const pid = nginxPid(layout);
    if (pid) {
      signal(pid, 'SIGQUIT');
      await waitForExit(pid, 'nginx: master', 10_000);
    }
    for (const server of servers) await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  test('passes nginx -t once rendered', async () => {
    const result = await testNginxConfig(nginx ?? '', layout);
    assert.ok(result.ok, result.output);
  });

  test('never replays a POST that an instance dropped, and retries every GET on another instance', async () => {
    seen.length = 0;
    crashing.crash = true;
    // Round robin: three POSTs in a row reach each instance once, so one lands on the crashing one.
    const posts = [];
    for (let i = 0; i < 3; i += 1) {
      const response = await fetch(`${base}/v1/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      posts.push({ status: response.status, type: response.headers.get('content-type'), body: await response.json() });
    }
    const lost = posts.filter((post) => post.status !== 201);
    assert.equal(lost.length, 1, JSON.stringify(posts));
    const [dropped] = lost;
    assert.ok(dropped);
    assert.equal(dropped.status, 503);
    assert.equal(dropped.type, 'application/problem+json');
    assert.equal((dropped.body as { code: string }).code, 'unavailable');
    assert.equal(seen.filter((request) => request.method === 'POST').length, 3, 'each POST reached exactly one instance');

    const gets = await Promise.all(Array.from({ length: 9 }, () => fetch(`${base}/v1/users/me`)));
    assert.deepEqual(
      gets.map((response) => response.status),
      Array(9).fill(200),
    );
    crashing.crash = false;
  });

  test('rejects a body over 64 KiB with problem+json, and streams a large import through', async () => {
    const tooLarge = await fetch(`${base}/v1/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: 'x'.repeat(65 * 1024),
    });
    assert.equal(tooLarge.status, 413);
    assert.equal(((await tooLarge.json()) as { code: string }).code, 'payload_too_large');

    seen.length = 0;
    const importBody = 'x'.repeat(3 * 1024 * 1024);
    const accepted = await fetch(`${base}/v1/imports`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: importBody,
    });
    assert.equal(accepted.status, 201);
    assert.equal(((await accepted.json()) as { bodyBytes: number }).bodyBytes, importBody.length);
  });

  test('caches public documents as their Cache-Control allows, never the API', async () => {
    seen.length = 0;
    const first = await fetch(`${base}/openapi.json`, { headers: { 'x-request-id': 'doc-1' } });
    await first.arrayBuffer();
    const second = await fetch(`${base}/openapi.json`, { headers: { 'x-request-id': 'doc-2' } });
    await second.arrayBuffer();
    assert.equal(second.headers.get('x-cache-status'), 'HIT');
    // A cached copy carries the caller's own request id, not the first caller's.
    assert.equal(second.headers.get('x-request-id'), 'doc-2');
    for (let i = 0; i < 2; i += 1) await (await fetch(`${base}/v1/users/cacheable`)).arrayBuffer();
    assert.equal(seen.filter((request) => request.url === '/openapi.json').length, 1);
    assert.equal(seen.filter((request) => request.url === '/v1/users/cacheable').length, 2);
  });

  test("passes the client's address and request id, and drops a forged X-Forwarded-For", async () => {
    seen.length = 0;
    const response = await fetch(`${base}/v1/users/me`, { headers: { 'x-request-id': 'trace-42', 'x-forwarded-for': '203.0.113.9' } });
    assert.equal(response.headers.get('x-request-id'), 'trace-42');
    const reached = seen.at(-1);
    assert.equal(reached?.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(reached?.headers['x-request-id'], 'trace-42');
    // An id gatehouse would not accept is replaced by nginx's own.
    const odd = await fetch(`${base}/v1/users/me`, { headers: { 'x-request-id': 'has spaces "and quotes"' } });
    assert.match(odd.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/);
  });

  test('answers a flood from one address with 429 problem+json and Retry-After', async () => {
    // The earlier tests' requests are still in this address's bucket (it drains at 50/s, and holds at
    // most the burst of 100): let it empty, so that the whole burst is this test's.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const responses = await Promise.all(Array.from({ length: 250 }, () => fetch(`${base}/healthz`)));
    const limited = responses.filter((response) => response.status === 429);
    assert.ok(limited.length > 0, 'some requests beyond the burst are limited');
    // The edge lets the burst through (what the stand-in upstreams then answer is not this test's subject).
    const statuses: Record<number, number> = {};
    for (const response of responses) statuses[response.status] = (statuses[response.status] ?? 0) + 1;
    assert.ok(responses.length - limited.length >= 100, `the burst of 100 is not limited: ${JSON.stringify(statuses)}`);
    const sample = limited[0] as Response;
    assert.equal(sample.headers.get('retry-after'), '1');
    assert.equal(((await sample.json()) as { code: string }).code, 'too_many_requests');
    await Promise.all(responses.filter((response) => !response.bodyUsed).map((response) => response.arrayBuffer()));
  });
});
