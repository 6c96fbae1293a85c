import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { targets } from './helpers/databases.js';

for (const { target, skip } of await targets()) {
  describe(`smoke on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    test('admin creates a user who signs in and reads itself', async () => {
      const user = await t.createUser();
      const pair = await t.signIn(user.username, user.password);
      const me = await t.app.inject({ url: '/v1/users/me', headers: { authorization: `Bearer ${pair.access_token}` } });
      assert.equal(me.statusCode, 200, me.body);
      assert.equal(me.json().username, user.username);
      assert.ok(me.json().last_login_at);
    });
  });
}
