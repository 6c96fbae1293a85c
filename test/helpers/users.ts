// Shared by the users suites: request shortcuts, assertions and expected orderings.
import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import { problem, type TestApp, uniqueName } from './app.js';

export interface UserBody {
  id: string;
  username: string;
  email: string;
  display_name: string | null;
  roles: string[];
  status: string;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
  last_seen_at: string | null;
}

export interface LoginBody {
  at: string;
  success: boolean;
  method: string;
  ip: string | null;
  user_agent: string | null;
}

export const USER_FIELDS = [
  'created_at',
  'display_name',
  'email',
  'id',
  'last_login_at',
  'last_seen_at',
  'roles',
  'status',
  'updated_at',
  'username',
];
export const WWW_AUTHENTICATE = 'Basic realm="gatehouse", Bearer realm="gatehouse"';
export const RFC3339_MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const SORTS = ['created_at', '-created_at', 'username', '-username', 'last_login_at', '-last_login_at'] as const;

export type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export function call(t: TestApp, method: Method, url: string, authorization?: string, payload?: Record<string, unknown>) {
  return t.app.inject({ method, url, headers: authorization ? { authorization } : {}, ...(payload === undefined ? {} : { payload }) });
}

/** Asserts a problem+json response with the status and code (and an error on `field`); returns its body. */
export function assertProblem(response: LightMyRequestResponse, status: number, code: string, field?: string) {
  assert.equal(response.statusCode, status, response.body);
  const body = problem(response);
  assert.match(body.contentType, /^application\/problem\+json/);
  assert.equal(body.code, code, response.body);
  if (field !== undefined) {
    assert.ok(
      body.errors?.some((error) => error.field === field),
      `expected an error on ${field}: ${response.body}`,
    );
  }
  return body;
}

export function assertUnauthorized(response: LightMyRequestResponse) {
  assertProblem(response, 401, 'unauthorized');
  assert.equal(response.headers['www-authenticate'], WWW_AUTHENTICATE);
}

export function assertUserRepresentation(body: Record<string, unknown>) {
  assert.deepEqual(Object.keys(body).sort(), USER_FIELDS);
}

export async function readUser(t: TestApp, id: string): Promise<UserBody> {
  const response = await call(t, 'GET', `/v1/users/${id}`, t.adminBasic);
  assert.equal(response.statusCode, 200, response.body);
  return response.json();
}

export async function listUsers(t: TestApp, query: Record<string, string>): Promise<{ items: UserBody[]; next_cursor: string | null }> {
  const response = await call(t, 'GET', `/v1/users?${new URLSearchParams(query)}`, t.adminBasic);
  assert.equal(response.statusCode, 200, response.body);
  return response.json();
}

export async function idsMatching(t: TestApp, query: Record<string, string>): Promise<string[]> {
  return (await listUsers(t, { limit: '100', ...query })).items.map((user) => user.id);
}

/** Follows next_cursor to the end: every page but the last is full, and next_cursor is null only on the last. */
export async function walk(t: TestApp, query: Record<string, string>, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 50; page++) {
    const body = await listUsers(t, { ...query, limit: String(limit), ...(cursor ? { cursor } : {}) });
    assert.ok(body.items.length <= limit, `a page holds at most ${limit} users`);
    if (cursor !== null) assert.ok(body.items.length > 0, 'a next_cursor leads to more users');
    ids.push(...body.items.map((user) => user.id));
    if (body.next_cursor === null) return ids;
    assert.equal(body.items.length, limit, 'only the last page may be short');
    cursor = body.next_cursor;
  }
  assert.fail('pagination did not reach a page with next_cursor null');
}

/** The contract's order: by the sort column (NULL last_login_at is the oldest), ties by id, one direction. */
export function compareFor(sort: (typeof SORTS)[number]) {
  const descending = sort.startsWith('-');
  const column = sort.replace('-', '') as 'created_at' | 'username' | 'last_login_at';
  return (a: UserBody, b: UserBody) => {
    const left = a[column];
    const right = b[column];
    let order = 0;
    if (left !== right) order = left === null ? -1 : right === null ? 1 : left < right ? -1 : 1;
    if (order === 0) order = a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    return descending ? -order : order;
  };
}

export async function signInWith(t: TestApp, username: string, password: string, userAgent: string) {
  return t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { 'user-agent': userAgent }, payload: { username, password } });
}

export async function logins(
  t: TestApp,
  id: string,
  authorization = t.adminBasic,
  query = '',
): Promise<{ items: LoginBody[]; next_cursor: string | null }> {
  const response = await call(t, 'GET', `/v1/users/${id}/logins${query}`, authorization);
  assert.equal(response.statusCode, 200, response.body);
  return response.json();
}

/** The same instant as an RFC 3339 time at UTC+05:30. */
export function withOffset(iso: string): string {
  return new Date(Date.parse(iso) + 330 * 60_000).toISOString().replace('Z', '+05:30');
}

export function withoutRequestId(body: Record<string, unknown>) {
  const copy = { ...body };
  delete copy.request_id;
  return copy;
}

export function newUserBody(fields: Record<string, unknown> = {}) {
  const username = uniqueName('new');
  return { username, email: `${username}@example.com`, password: `pw-${username}-long-enough`, ...fields };
}
