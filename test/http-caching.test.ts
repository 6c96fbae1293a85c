// What a CDN may keep: the public documents carry Cache-Control: public and a strong ETag and
// answer 304 to a matching If-None-Match; the JWKS lifetime stays below the signing-key activation
// delay; API responses (errors included) stay no-store.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, type TestApp } from './helpers/app.js';

describe('caching headers for the edge and CDNs', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp('sqlite', { signingKeyActivationSeconds: 90 });
  });
  after(async () => t?.close());

  for (const [url, cacheControl] of [
    ['/.well-known/jwks.json', 'public, max-age=30'],
    ['/openapi.json', 'public, max-age=300'],
    ['/docs', 'public, no-cache'],
    ['/docs/static/swagger-initializer.js', 'public, max-age=3600'],
  ] as const) {
    test(`${url}: ${cacheControl}, a strong ETag, and 304 without a body when it matches`, async () => {
      const first = await t.app.inject({ url });
      assert.equal(first.statusCode, 200, first.body);
      assert.equal(first.headers['cache-control'], cacheControl);
      const etag = String(first.headers.etag);
      assert.match(etag, /^"[A-Za-z0-9_-]{32}"$/);
      const again = await t.app.inject({ url, headers: { 'if-none-match': etag } });
      assert.equal(again.statusCode, 304);
      assert.equal(again.body, '');
      assert.equal(again.headers.etag, etag);
      assert.equal(again.headers['cache-control'], cacheControl);
      const weakMatch = await t.app.inject({ url, headers: { 'if-none-match': `"other", W/${etag}` } });
      assert.equal(weakMatch.statusCode, 304, 'If-None-Match compares weakly');
      const stale = await t.app.inject({ url, headers: { 'if-none-match': '"something-else"' } });
      assert.equal(stale.statusCode, 200);
      assert.equal(stale.body, first.body);
    });
  }

  test('the docs assets served as files keep their own validators and are cacheable', async () => {
    const css = await t.app.inject({ url: '/docs/static/swagger-ui.css' });
    assert.equal(css.statusCode, 200);
    assert.equal(css.headers['cache-control'], 'public, max-age=3600');
    assert.ok(css.headers.etag, 'an ETag');
    const again = await t.app.inject({ url: '/docs/static/swagger-ui.css', headers: { 'if-none-match': String(css.headers.etag) } });
    assert.equal(again.statusCode, 304);
  });

  test('API responses, successful or not, are no-store and carry no ETag', async () => {
    for (const [url, authorization, status] of [
      ['/v1/users', t.adminBasic, 200],
      ['/v1/users', undefined, 401],
      ['/v1/nothing-here', undefined, 404],
    ] as const) {
      const response = await t.app.inject({ url, headers: authorization ? { authorization } : {} });
      assert.equal(response.statusCode, status, `${url}: ${response.body}`);
      assert.equal(response.headers['cache-control'], 'no-store', url);
      assert.equal(response.headers.etag, undefined, url);
    }
  });

  test('the JWKS is never cached for longer than a third of the key activation delay, nor 5 minutes', async () => {
    const quick = await buildTestApp('sqlite', { signingKeyActivationSeconds: 10 });
    try {
      const response = await quick.app.inject({ url: '/.well-known/jwks.json' });
      assert.equal(response.headers['cache-control'], 'public, max-age=3');
    } finally {
      await quick.close();
    }
    const slow = await buildTestApp('sqlite', { signingKeyActivationSeconds: 3600 });
    try {
      const response = await slow.app.inject({ url: '/.well-known/jwks.json' });
      assert.equal(response.headers['cache-control'], 'public, max-age=300');
    } finally {
      await slow.close();
    }
  });
});
