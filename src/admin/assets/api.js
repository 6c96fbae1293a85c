// The console's only way to the API. Tokens live in this module's variables, never in storage or
// cookies: a reload signs out, which is the price of nothing for a script injection to steal later.
// The access token is refreshed (with rotation) before it expires; when that fails, or the API
// answers 401, the session is over and onSessionEnded tells the app.

/** @typedef {{ field: string, message: string }} FieldError */
/** @typedef {{ status: number, code: string, title?: string, detail: string, errors?: FieldError[] }} Problem */
/** @typedef {{ id: string, username: string, email: string, display_name: string | null, roles: string[], status: string, created_at: string, updated_at: string, last_login_at: string | null, last_seen_at: string | null }} User */
/** @typedef {{ access_token: string, expires_in: number, refresh_token: string, user: User }} TokenPair */

export class ApiError extends Error {
  /** @param {Problem} problem */
  constructor(problem) {
    super(problem.detail);
    this.problem = problem;
  }
}

/** @type {{ accessToken: string, refreshToken: string, user: User } | null} */
let session = null;

/**
 * Every call goes through here. `credentials: 'omit'`: the tokens travel in the Authorization
 * header, never in cookies, and a 401 then cannot make the browser open its own Basic sign-in
 * prompt (the API's 401 carries `WWW-Authenticate: Basic`; Fetch standard, HTTP-network-or-cache fetch).
 * @param {string} path @param {RequestInit} init
 */
function send(path, init) {
  return fetch(path, { ...init, credentials: 'omit', cache: 'no-store' });
}
/** @type {ReturnType<typeof setTimeout> | undefined} */
let refreshTimer;
/** @type {Promise<boolean> | null} */
let refreshing = null;
/** @type {(message: string) => void} */
let sessionEnded = () => {};

/** @param {(message: string) => void} listener */
export function onSessionEnded(listener) {
  sessionEnded = listener;
}

export function currentUser() {
  return session?.user ?? null;
}

/** @param {Response} response @returns {Promise<any>} */
async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { status: response.status, code: 'internal_error', detail: `The server answered ${response.status}.` };
  }
}

/** @param {Response} response @param {any} body @returns {ApiError} */
function toError(response, body) {
  if (body && typeof body.code === 'string') return new ApiError(body);
  return new ApiError({ status: response.status, code: 'internal_error', detail: `The server answered ${response.status}.` });
}

/** Refresh a minute before expiry, or half-way through a short-lived token. @param {number} expiresInSeconds */
function scheduleRefresh(expiresInSeconds) {
  clearTimeout(refreshTimer);
  const lead = expiresInSeconds > 120 ? expiresInSeconds - 60 : expiresInSeconds / 2;
  refreshTimer = setTimeout(() => {
    refresh().then((ok) => {
      if (!ok) endSession('Your session has ended. Sign in again.');
    });
  }, lead * 1000);
}

/** @param {TokenPair} pair */
function adopt(pair) {
  session = { accessToken: pair.access_token, refreshToken: pair.refresh_token, user: pair.user };
  scheduleRefresh(pair.expires_in);
}

function forget() {
  clearTimeout(refreshTimer);
  session = null;
}

/** @param {string} message */
function endSession(message) {
  if (!session) return;
  forget();
  sessionEnded(message);
}

/** Rotates the refresh token; one refresh at a time, however many requests wait for it. */
function refresh() {
  if (!session) return Promise.resolve(false);
  refreshing ??= (async () => {
    try {
      const response = await send('/v1/sessions/refresh', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: session?.refreshToken }),
      });
      if (!response.ok) return false;
      adopt(await response.json());
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/**
 * Signs in; only an admin may use the console, so anyone else is signed out again at once.
 * @param {string} username @param {string} password @returns {Promise<User>}
 */
export async function signIn(username, password) {
  const response = await send('/v1/sessions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const body = await readBody(response);
  if (!response.ok) throw toError(response, body);
  /** @type {TokenPair} */
  const pair = body;
  if (!pair.user.roles.includes('admin')) {
    await send('/v1/sessions/current', { method: 'DELETE', headers: { authorization: `Bearer ${pair.access_token}` } }).catch(() => {});
    throw new ApiError({ status: 403, code: 'forbidden', detail: 'This account is not an admin; the console is for admins only.' });
  }
  adopt(pair);
  return pair.user;
}

export async function signOut() {
  const token = session?.accessToken;
  forget();
  if (token) await send('/v1/sessions/current', { method: 'DELETE', headers: { authorization: `Bearer ${token}` } }).catch(() => {});
}

/**
 * Calls the API as the signed-in admin. A 401 gets one refresh and one retry (the tab may have
 * slept through the scheduled refresh); after that the session is over.
 * @param {string} method @param {string} path @param {unknown} [body] @returns {Promise<any>}
 */
export async function api(method, path, body) {
  for (let attempt = 0; ; attempt++) {
    if (!session) throw new ApiError({ status: 401, code: 'unauthorized', detail: 'Sign in first.' });
    /** @type {Record<string, string>} */
    const headers = { authorization: `Bearer ${session.accessToken}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await send(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (response.status === 401) {
      if (attempt === 0 && (await refresh())) continue;
      endSession('Your session has ended. Sign in again.');
      throw toError(response, await readBody(response));
    }
    const parsed = await readBody(response);
    if (!response.ok) throw toError(response, parsed);
    return parsed;
  }
}

/** A query string from the defined, non-empty values. @param {Record<string, string | number | boolean | undefined | null>} params */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}
