// Shared by the sessions suites: request shortcuts, assertions and direct reads of the database.
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { SignJWT } from 'jose';
import { problem, type TestApp } from './app.js';

export const WWW_AUTHENTICATE = 'Basic realm="gatehouse", Bearer realm="gatehouse"';

export function assertUnauthorized(response: LightMyRequestResponse): void {
  assert.equal(response.statusCode, 401, response.body);
  assert.equal(problem(response).code, 'unauthorized');
  assert.equal(response.headers['www-authenticate'], WWW_AUTHENTICATE);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Re-reads until accept() holds or a few seconds pass; returns the last value read. */
export async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const value = await read();
    if (accept(value) || Date.now() > deadline) return value;
    await sleep(10);
  }
}

export function iso(value: string | Date | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

/** The algorithm and cost parameters of a PHC string, whatever order the parameters are written in. */
export function phcParameters(hash: string): { algorithm: string; m: number; t: number; p: number } {
  const [, algorithm, , parameters] = hash.split('$');
  const values = Object.fromEntries((parameters ?? '').split(',').map((pair) => pair.split('=')));
  return { algorithm: algorithm ?? '', m: Number(values.m), t: Number(values.t), p: Number(values.p) };
}

export function me(t: TestApp, authorization: string) {
  return t.app.inject({ url: '/v1/users/me', headers: { authorization } });
}

export function refresh(t: TestApp, refreshToken: string) {
  return t.app.inject({ method: 'POST', url: '/v1/sessions/refresh', payload: { refresh_token: refreshToken } });
}

export function signInResponse(t: TestApp, payload: unknown) {
  return t.app.inject({ method: 'POST', url: '/v1/sessions', payload: payload as Record<string, unknown> });
}

export async function storedUser(t: TestApp, id: string) {
  const row = await t.services.usersRepository.findById(id);
  assert.ok(row, `user ${id} is stored`);
  return row;
}

export async function logins(t: TestApp, userId: string) {
  const response = await t.app.inject({ url: `/v1/users/${userId}/logins?limit=100`, headers: { authorization: t.adminBasic } });
  assert.equal(response.statusCode, 200, response.body);
  return response.json().items as { at: string; success: boolean; method: string; ip: string | null; user_agent: string | null }[];
}

export async function setStatus(t: TestApp, userId: string, status: 'active' | 'disabled'): Promise<void> {
  const response = await t.app.inject({
    method: 'PATCH',
    url: `/v1/users/${userId}`,
    headers: { authorization: t.adminBasic },
    payload: { status },
  });
  assert.equal(response.statusCode, 200, response.body);
}

/** Signs an access token with the app's own current private key, read from the database. */
export async function signWithAppKey(t: TestApp, claims: { sub: string; sid: string; iat: number; exp: number }): Promise<string> {
  const row = await t.services.database.db
    .selectFrom('signing_keys')
    .selectAll()
    .where('retired_at', 'is', null)
    .orderBy('created_at', 'desc')
    .executeTakeFirstOrThrow();
  return new SignJWT({ sid: claims.sid })
    .setProtectedHeader({ alg: 'EdDSA', kid: row.kid, typ: 'at+jwt' })
    .setSubject(claims.sub)
    .setIssuer('gatehouse')
    .setAudience('gatehouse')
    .setIssuedAt(claims.iat)
    .setExpirationTime(claims.exp)
    .sign(createPrivateKey(row.private_key_pem));
}
