// The admin console at /admin: how its files are served (CSP, caching, 304), the two admin
// endpoints it needs (set a password, end sessions), and the console itself driven in a real
// browser (Debian's Chromium through playwright-core). Screenshots go to test-artifacts/admin/.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, type BrowserContext, type ConsoleMessage, chromium, type Page } from 'playwright-core';
import { ADMIN_CSP } from '../src/admin/admin.routes.js';
import { uuidv7 } from '../src/lib/ids.js';
import { ADMIN, bearer, buildTestApp, problem, type TestApp, uniqueName } from './helpers/app.js';
import { targets } from './helpers/databases.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('../test-artifacts/admin/', import.meta.url).pathname;
const DOCS_SCREENSHOT = new URL('../docs/admin-console.png', import.meta.url).pathname;

describe('serving /admin', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp('sqlite');
  });
  after(async () => t?.close());

  test('the page has a strict CSP, no inline script or style, and is revalidated on every load', async () => {
    for (const url of ['/admin', '/admin/']) {
      const response = await t.app.inject({ method: 'GET', url });
      assert.equal(response.statusCode, 200);
      assert.match(String(response.headers['content-type']), /^text\/html/);
      assert.equal(response.headers['content-security-policy'], ADMIN_CSP);
      assert.equal(response.headers['cache-control'], 'no-cache');
      assert.match(String(response.headers.etag), /^"[\w-]+"$/);
      assert.doesNotMatch(response.body, /<script(?![^>]*\bsrc=)[^>]*>/, 'every script has a src');
      assert.doesNotMatch(response.body, /\sstyle=|<style/, 'no inline style');
      assert.doesNotMatch(response.body, /https?:\/\//, 'nothing from another origin');
    }
  });

  test('assets are cacheable for an hour with a strong ETag, and a matching If-None-Match gets 304 without a body', async () => {
    for (const [url, type] of [
      ['/admin/assets/app.js', /^text\/javascript/],
      ['/admin/assets/admin.css', /^text\/css/],
      ['/admin/assets/icon.svg', /^image\/svg\+xml/],
    ] as const) {
      const first = await t.app.inject({ method: 'GET', url });
      assert.equal(first.statusCode, 200, url);
      assert.match(String(first.headers['content-type']), type);
      assert.equal(first.headers['cache-control'], 'public, max-age=3600');
      const etag = String(first.headers.etag);
      assert.match(etag, /^"[\w-]+"$/, 'strong ETag');
      const again = await t.app.inject({ method: 'GET', url, headers: { 'if-none-match': etag } });
      assert.equal(again.statusCode, 304);
      assert.equal(again.body, '');
      assert.equal(again.headers.etag, etag);
      assert.equal(again.headers['cache-control'], 'public, max-age=3600');
      const listed = await t.app.inject({ method: 'GET', url, headers: { 'if-none-match': `"other", W/${etag}` } });
      assert.equal(listed.statusCode, 304, 'a list and a weak form of the tag match too');
      const stale = await t.app.inject({ method: 'GET', url, headers: { 'if-none-match': '"something-else"' } });
      assert.equal(stale.statusCode, 200);
      assert.equal(stale.body, first.body);
    }
    const page = await t.app.inject({ method: 'GET', url: '/admin' });
    const revalidated = await t.app.inject({ method: 'GET', url: '/admin', headers: { 'if-none-match': String(page.headers.etag) } });
    assert.equal(revalidated.statusCode, 304);
    assert.equal(revalidated.headers['cache-control'], 'no-cache');
  });

  test('an unknown asset is a 404 problem', async () => {
    const missing = problem(await t.app.inject({ method: 'GET', url: '/admin/assets/nothing.js' }));
    assert.equal(missing.status, 404);
    assert.equal(missing.code, 'not_found');
    const traversal = await t.app.inject({ method: 'GET', url: '/admin/assets/..%2Fadmin.routes.ts' });
    assert.equal(traversal.statusCode, 404);
  });
});

for (const { target, skip } of await targets()) {
  describe(`admin actions on another user on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    test('PUT /v1/users/{id}/password sets the password and ends every session of that user', async () => {
      const user = await t.createUser();
      const pair = await t.signIn(user.username, user.password);
      const url = `/v1/users/${user.id}/password`;
      const weak = problem(
        await t.app.inject({ method: 'PUT', url, headers: { authorization: t.adminBasic }, payload: { new_password: 'short' } }),
      );
      assert.equal(weak.status, 422);
      assert.equal(weak.errors?.[0]?.field, 'new_password');
      const set = await t.app.inject({
        method: 'PUT',
        url,
        headers: { authorization: t.adminBasic },
        payload: { new_password: 'a brand new passphrase' },
      });
      assert.equal(set.statusCode, 204);
      const me = await t.app.inject({ method: 'GET', url: '/v1/users/me', headers: { authorization: bearer(pair.access_token) } });
      assert.equal(me.statusCode, 401, 'the old session ended');
      const old = await t.app.inject({
        method: 'POST',
        url: '/v1/sessions',
        payload: { username: user.username, password: user.password },
      });
      assert.equal(old.statusCode, 401);
      await t.signIn(user.username, 'a brand new passphrase');

      const byUser = problem(
        await t.app.inject({
          method: 'PUT',
          url,
          headers: { authorization: t.basic(user.username, 'a brand new passphrase') },
          payload: { new_password: 'yet another passphrase' },
        }),
      );
      assert.equal(byUser.status, 403);
      const nobody = problem(
        await t.app.inject({
          method: 'PUT',
          url: '/v1/users/nobody/password',
          headers: { authorization: t.adminBasic },
          payload: { new_password: 'yet another passphrase' },
        }),
      );
      assert.equal(nobody.status, 404);
    });

    test('DELETE /v1/users/{id}/sessions ends every session of the user and says how many', async () => {
      const user = await t.createUser();
      const first = await t.signIn(user.username, user.password);
      const second = await t.signIn(user.username, user.password);
      const url = `/v1/users/${user.id}/sessions`;
      const revoked = await t.app.inject({ method: 'DELETE', url, headers: { authorization: t.adminBasic } });
      assert.equal(revoked.statusCode, 200);
      assert.deepEqual(revoked.json(), { revoked: 2 });
      for (const pair of [first, second]) {
        const me = await t.app.inject({ method: 'GET', url: '/v1/users/me', headers: { authorization: bearer(pair.access_token) } });
        assert.equal(me.statusCode, 401);
        const refreshed = await t.app.inject({
          method: 'POST',
          url: '/v1/sessions/refresh',
          payload: { refresh_token: pair.refresh_token },
        });
        assert.equal(refreshed.statusCode, 401);
      }
      assert.deepEqual((await t.app.inject({ method: 'DELETE', url, headers: { authorization: t.adminBasic } })).json(), { revoked: 0 });
      const forbidden = await t.app.inject({ method: 'DELETE', url, headers: { authorization: t.basic(user.username, user.password) } });
      assert.equal(forbidden.statusCode, 403);
    });
  });
}

/** Why the browser suite cannot run here, or null when it can. Under CI a missing browser is a failure. */
function browserSkip(): string | false {
  if (existsSync(CHROMIUM)) return false;
  const reason = `Chromium is not installed at ${CHROMIUM} (apt-get install chromium)`;
  if (process.env.CI === 'true') throw new Error(`the admin console's browser tests need Chromium in CI: ${reason}`);
  process.stderr.write(`# ${reason}: the admin console's browser tests are SKIPPED\n`);
  return reason;
}

/** A 4xx from the API is an answer the console shows; Chromium still logs it as a console error. */
function isExpectedApiAnswer(message: ConsoleMessage, origin: string): boolean {
  return (
    message.text().startsWith('Failed to load resource: the server responded with a status of 4') &&
    message.location().url.startsWith(`${origin}/v1/`)
  );
}

describe('the admin console in a browser', { skip: browserSkip() }, () => {
  let t: TestApp;
  let origin: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const people = { prefix: `${uniqueName('crew')}-`, names: [] as string[] };

  async function shot(name: string): Promise<void> {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  async function signInAsAdmin(): Promise<void> {
    await page.getByLabel('Username', { exact: true }).fill(ADMIN.username);
    await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#topbar').waitFor();
  }

  /** Opens a view by its address; a reload forgets the tokens (memory only), so sign in again then. */
  async function openView(hash: string): Promise<void> {
    await page.goto(`${origin}/admin${hash}`);
    await page.locator('main h1').waitFor();
    if (await page.getByRole('button', { name: 'Sign in' }).isVisible()) await signInAsAdmin();
  }

  async function apiUser(id: string) {
    return t.app.inject({ method: 'GET', url: `/v1/users/${id}`, headers: { authorization: t.adminBasic } });
  }

  /** Sign-ins spread over the last 30 days, so that the chart has something to show. */
  async function seedHistory(userId: string): Promise<void> {
    for (let day = 29; day >= 1; day--) {
      const at = new Date(Date.now() - day * 86_400_000).toISOString();
      const succeeded = 3 + ((day * 7) % 11);
      const failed = day % 4 === 0 ? 2 : day % 9 === 0 ? 1 : 0;
      for (let i = 0; i < succeeded + failed; i++) {
        await t.services.loginsRepository.insert({
          id: uuidv7(),
          user_id: userId,
          at,
          success: i < succeeded ? 1 : 0,
          method: 'password',
          ip: '203.0.113.7',
          user_agent: 'seed',
        });
      }
    }
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // A 30 s access token (the shortest allowed) so that the console's refresh happens within the suite.
    t = await buildTestApp('sqlite', { accessTokenTtlSeconds: 30 });
    origin = await t.app.listen({ port: 0, host: '127.0.0.1' });
    for (const name of ['ada', 'bert', 'cleo', 'dmitri']) {
      const user = await t.createUser({ username: `${people.prefix}${name}`, display_name: `${name[0]?.toUpperCase()}${name.slice(1)}` });
      people.names.push(user.username);
    }
    const ada = await t.services.usersRepository.findByUsername(`${people.prefix}ada`);
    assert.ok(ada);
    // History first: the API orders it by event id, and ids grow with the time they are made.
    await seedHistory(ada.id);
    await t.signIn(ada.username, `pw-${ada.username}-long-enough`);
    const wrong = await t.app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { username: ada.username, password: 'not her password' },
    });
    assert.equal(wrong.statusCode, 401);

    // A plain launch runs on a fresh, temporary profile that Playwright deletes on close.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-GB', timezoneId: 'UTC' });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && !isExpectedApiAnswer(message, origin)) pageErrors.push(`console: ${message.text()}`);
    });
  });

  after(async () => {
    await browser?.close();
    await t?.close();
  });

  test('signs in with the keyboard after a wrong password, and lands on the dashboard', async () => {
    await page.goto(`${origin}/admin`);
    const username = page.getByLabel('Username', { exact: true });
    await username.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'username', 'the username field has focus');
    await page.keyboard.type(ADMIN.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type('not the password');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'username or password is wrong' }).waitFor();
    await shot('01-sign-in-failed');
    await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'H1', 'focus moves to the new page heading');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    assert.deepEqual(pageErrors, []);
  });

  test('the dashboard shows the user counts and a 30-day chart of sign-ins', async () => {
    const stats = (await t.app.inject({ method: 'GET', url: '/v1/stats', headers: { authorization: t.adminBasic } })).json();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Dashboard' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    for (const [label, value] of [
      ['Total', stats.users.total],
      ['Active', stats.users.active],
      ['Disabled', stats.users.disabled],
      ['Signed in within 24 h', stats.users.signed_in_24h],
      ['Never signed in', stats.users.never_signed_in],
    ] as const) {
      assert.equal((await page.locator(`[data-stat="${label}"] .stat-value`).textContent())?.trim(), String(value), label);
    }
    const chart = page.getByRole('img', { name: /Sign-ins per day over the last 30 days/ });
    await chart.waitFor();
    assert.equal(await page.locator('.chart-day').count(), 30);
    assert.ok((await page.locator('.chart-day rect.bar-succeeded').count()) >= 29, 'a bar for each day with sign-ins');
    assert.ok((await page.locator('.chart-day rect.bar-failed').count()) > 0);
    const today = new Date().toISOString().slice(0, 10);
    const counted = stats.sign_ins_per_day.find((day: { date: string }) => day.date === today);
    const title = await page.locator(`.chart-day[data-date="${today}"] title`).textContent();
    assert.equal(title, `${today}: ${counted.succeeded} succeeded, ${counted.failed} failed`);
    await shot('02-dashboard');
    if (process.env.UPDATE_DOCS_SCREENSHOT === 'true') {
      mkdirSync(new URL('../docs/', import.meta.url).pathname, { recursive: true });
      await page.screenshot({ path: DOCS_SCREENSHOT, fullPage: false });
    }
    assert.deepEqual(pageErrors, []);
  });

  test('creating a user shows the API messages beside the fields, then creates it', async () => {
    await page.getByRole('link', { name: 'New user' }).first().click();
    await page.getByRole('heading', { name: 'New user' }).waitFor();
    await page.getByLabel('Username', { exact: true }).fill('x');
    await page.getByLabel('Email').fill('not-an-email');
    await page.getByLabel('Password', { exact: true }).fill('short');
    await page.getByRole('button', { name: 'Create user' }).click();
    const usernameError = page.locator('[data-field="username"] .field-error');
    await usernameError.waitFor();
    assert.match(String(await usernameError.textContent()), /3-32 characters/);
    assert.match(String(await page.locator('[data-field="email"] .field-error').textContent()), /valid email/);
    const username = page.getByLabel('Username', { exact: true });
    assert.equal(await username.getAttribute('aria-invalid'), 'true');
    const errorId = await usernameError.getAttribute('id');
    assert.ok(
      String(await username.getAttribute('aria-describedby'))
        .split(' ')
        .includes(String(errorId)),
      'the message describes the field',
    );
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'username', 'focus on the first wrong field');
    await shot('03-create-invalid');

    const name = `${people.prefix}eve`;
    await username.fill(name);
    await page.getByLabel('Email').fill(`${name}@example.com`);
    await page.getByRole('button', { name: 'Create user' }).click();
    const passwordError = page.locator('[data-field="password"] .field-error');
    await passwordError.filter({ hasText: 'must be at least 12 characters' }).waitFor();
    assert.equal(await page.locator('[data-field="username"] .field-error').isHidden(), true, 'the fixed field is no longer marked');
    await page.getByLabel('Password', { exact: true }).fill('a long enough passphrase');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('heading', { level: 1, name }).waitFor();
    await page
      .getByRole('status')
      .filter({ hasText: `Created ${name}.` })
      .waitFor();
    const listed = await t.app.inject({ method: 'GET', url: `/v1/users?q=${name}`, headers: { authorization: t.adminBasic } });
    assert.equal(listed.json().items[0]?.username, name);
    people.names.push(name);
    assert.deepEqual(pageErrors, []);
  });

  test('search and filters narrow the users table', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click();
    await page.getByRole('heading', { name: 'Users' }).waitFor();
    await page.getByRole('searchbox', { name: 'Search' }).fill(people.prefix);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByText(`Page 1: ${people.names.length} users`).waitFor();
    const rows = page.locator('.users-table tbody tr th a');
    assert.deepEqual((await rows.allTextContents()).sort(), [...people.names].sort());
    await page.getByLabel('Sort').selectOption('username');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/sort=username/);
    // The page before was newest first: wait for the new order to arrive.
    await rows
      .first()
      .filter({ hasText: [...people.names].sort()[0] ?? '' })
      .waitFor();
    assert.deepEqual(await rows.allTextContents(), [...people.names].sort());
    await page.getByLabel('Never signed in').check();
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByText(`Page 1: ${people.names.length - 1} users`).waitFor();
    assert.ok(!(await rows.allTextContents()).includes(`${people.prefix}ada`), 'ada has signed in');
    await shot('04-users-search');
    await page.getByRole('searchbox', { name: 'Search' }).fill(`${people.prefix}nobody`);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByText('No users match.').waitFor();
    assert.equal(await page.locator('.users-table').count(), 0);
    assert.doesNotMatch(String(await page.locator('main').textContent()), /null|undefined/);
    assert.deepEqual(pageErrors, []);
  });

  test('disabling a user from its page ends its access', async () => {
    await openView(`#/users?q=${people.prefix}bert`);
    await page.getByRole('link', { name: `${people.prefix}bert` }).click();
    await page.getByRole('heading', { level: 1, name: `${people.prefix}bert` }).waitFor();
    await page.getByRole('button', { name: 'Disable user' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Disabled ${people.prefix}bert` })
      .waitFor();
    await page.getByRole('button', { name: 'Enable user' }).waitFor();
    const bert = await t.services.usersRepository.findByUsername(`${people.prefix}bert`);
    assert.equal(bert?.status, 'disabled');
    const signIn = await t.app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { username: `${people.prefix}bert`, password: `pw-${people.prefix}bert-long-enough` },
    });
    assert.equal(signIn.statusCode, 401);
    assert.deepEqual(pageErrors, []);
  });

  test("a user's page shows its sign-in history, successes and failures", async () => {
    await openView(`#/users?q=${people.prefix}ada`);
    await page.getByRole('link', { name: `${people.prefix}ada` }).click();
    const history = page.getByRole('table', { name: 'Sign-in history' });
    await history.waitFor();
    const firstRows = await history.locator('tbody tr').allTextContents();
    assert.equal(firstRows.length, 20, 'a page of 20');
    assert.match(firstRows[0] ?? '', /Failed/, 'newest first: the wrong password');
    assert.match(firstRows[1] ?? '', /Succeeded/);
    await page.getByRole('button', { name: 'Show older sign-ins' }).click();
    await history.locator('tbody tr').nth(39).waitFor();
    await shot('05-user-history');
    assert.deepEqual(pageErrors, []);
  });

  test('deleting a user asks for confirmation in a dialog that Escape cancels', async () => {
    await openView(`#/users?q=${people.prefix}cleo`);
    await page.getByRole('link', { name: `${people.prefix}cleo` }).click();
    const deleteButton = page.getByRole('button', { name: 'Delete user…' });
    await deleteButton.click();
    const dialog = page.getByRole('dialog', { name: `Delete ${people.prefix}cleo?` });
    await dialog.waitFor();
    await shot('06-delete-confirm');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await deleteButton.evaluate((element) => element === document.activeElement), true, 'focus returns to the button');
    const cleo = await t.services.usersRepository.findByUsername(`${people.prefix}cleo`);
    assert.ok(cleo, 'Escape deleted nothing');
    await deleteButton.click();
    await dialog.getByRole('button', { name: `Delete ${people.prefix}cleo` }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Deleted ${people.prefix}cleo.` })
      .waitFor();
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    assert.equal((await apiUser(cleo.id)).statusCode, 404);
    assert.deepEqual(pageErrors, []);
  });

  test('on a phone-sized screen the users table becomes cards without sideways scrolling', async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    await page.getByRole('searchbox', { name: 'Search' }).fill(people.prefix);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.locator('.users-table tbody tr').first().waitFor();
    assert.equal(await page.locator('.users-table thead').isVisible(), false);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
    await shot('07-users-phone');
    await page.setViewportSize({ width: 1280, height: 860 });
    assert.deepEqual(pageErrors, []);
  });

  test('refreshes the access token before it expires, rotating the refresh token', async () => {
    // Signed in at most a few seconds ago with a 30 s token: the refresh is due half-way.
    const refreshed = await page.waitForResponse((response) => response.url().endsWith('/v1/sessions/refresh'), { timeout: 30_000 });
    assert.equal(refreshed.status(), 200);
    const [request] = await Promise.all([
      page.waitForRequest((candidate) => candidate.url().includes('/v1/stats')),
      page.getByRole('link', { name: 'Dashboard' }).click(),
    ]);
    assert.equal(request.headers().authorization, `Bearer ${(await refreshed.json()).access_token}`);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    assert.deepEqual(pageErrors, []);
  });

  test('when its session is ended elsewhere, the console returns to sign-in with a message', async () => {
    const admin = await t.services.usersRepository.findByUsername(ADMIN.username);
    assert.ok(admin);
    const revoked = await t.app.inject({
      method: 'DELETE',
      url: `/v1/users/${admin.id}/sessions`,
      headers: { authorization: t.adminBasic },
    });
    assert.equal(revoked.json().revoked, 1);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click();
    await page.getByText('Your session has ended. Sign in again.').waitFor();
    await page.getByLabel('Username', { exact: true }).waitFor();
    assert.equal(await page.locator('#topbar').isHidden(), true);
    await shot('08-session-ended');
    assert.deepEqual(pageErrors, []);
  });
});
