// Who is calling. Each route declares `config.auth`: 'none' (public), 'optional' (a caller is
// resolved when credentials are sent), 'user' (any signed-in user) or 'admin'. Credentials come
// only from the Authorization header (Basic or Bearer); never from the query string.
import type { FastifyInstance, FastifyRequest, preParsingHookHandler } from 'fastify';
import { asArray } from '../lib/arrays.js';
import type { BasicGrant } from '../modules/sessions/basic-cache.js';
import type { ClientContext, SessionsService } from '../modules/sessions/sessions.service.js';
import { type Caller, isAdmin } from '../modules/users/users.view.js';
import { AppError } from './errors.js';

export type AuthRequirement = 'none' | 'optional' | 'user' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthRequirement;
    /**
     * A sign-in ('always') or sign-up ('anonymous') route: it gets the stricter per-address rate
     * limit; 'anonymous' only for callers that send no credentials (an admin creating users is
     * authenticated, and a wrong password there is counted by the sign-in throttle).
     */
    signIn?: 'always' | 'anonymous';
  }
  interface FastifyRequest {
    caller: Caller | null;
  }
}

export type Credentials =
  | { scheme: 'basic'; username: string; password: string }
  | { scheme: 'bearer'; token: string }
  | { scheme: 'invalid' };

export function parseAuthorization(header: string | undefined): Credentials | null {
  if (!header) return null;
  const space = header.indexOf(' ');
  const scheme = (space === -1 ? header : header.slice(0, space)).toLowerCase();
  const value = space === -1 ? '' : header.slice(space + 1).trim();
  if (scheme === 'bearer' && value) return { scheme: 'bearer', token: value };
  if (scheme === 'basic' && /^[A-Za-z0-9+/]+=*$/.test(value)) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { scheme: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return { scheme: 'invalid' };
}

export function clientContext(request: FastifyRequest): ClientContext {
  const userAgent = request.headers['user-agent'];
  return { ip: request.ip ?? null, userAgent: typeof userAgent === 'string' ? userAgent : null };
}

/** A Basic credential that authenticated a request on a connection: the header as sent, and its grant. */
interface ConnectionGrant extends BasicGrant {
  header: string;
}

export function registerAuth(app: FastifyInstance, sessions: SessionsService): void {
  app.decorateRequest('caller', null);

  // A client that uses HTTP Basic sends the same Authorization header with every request on a
  // keep-alive connection. The connection keeps the last one that authenticated, with its grant, so
  // that the next request with exactly the same header skips decoding and hashing it (about a
  // quarter of a Basic request's CPU time in bench S2: bench/RESULTS.md, ninth round). The header is
  // compared in full, so a proxy that carries many clients' requests over one connection gets no
  // one else's caller; the grant is checked as a remembered credential is (basicFromGrant). The
  // header stays in memory only as long as the connection and only with the Basic cache on.
  const grants = new WeakMap<object, ConnectionGrant>();

  function keepGrant(request: FastifyRequest, header: string, credentials: { username: string; password: string }): void {
    const grant = sessions.basicGrant(credentials.username, credentials.password);
    // A request made in-process (app.inject) or on a connection already gone may have no socket.
    const socket: object | null = request.raw.socket;
    if (grant && socket) grants.set(socket, { header, ...grant });
  }

  /** Records the caller, or says why there is none; `done` is the hook's callback. */
  function settle(request: FastifyRequest, requirement: AuthRequirement, caller: Caller | null, done: (error?: Error) => void): void {
    // Credentials that were sent but are wrong are a 401 even where they are optional.
    if (!caller) done(AppError.unauthorized());
    else if (requirement === 'admin' && !isAdmin(caller.user)) done(AppError.forbidden('Only an admin may do this.'));
    else {
      request.caller = caller;
      done();
    }
  }

  async function authenticate(credentials: Credentials, request: FastifyRequest): Promise<Caller | null> {
    if (credentials.scheme === 'basic')
      return sessions.authenticateBasic(credentials.username, credentials.password, clientContext(request));
    if (credentials.scheme === 'bearer') return sessions.authenticateBearer(credentials.token);
    return null;
  }

  // preParsing: before the body is read, so an unauthenticated caller costs no parsing or validation,
  // and after the rate limits (route onRequest hooks), so a 401 counts and a limited caller's
  // password is never verified. Callback-style: a caller whose credential and rows are in memory
  // (most requests of a busy caller) is settled at once, without a promise and its microtask turns.
  // A route hook, added to the routes that ask for a caller: a public route (health, docs, sign-in)
  // runs no hook at all, and none reads the route's options per request (Fastify 5 builds a new
  // object for each read of request.routeOptions).
  app.addHook('onRoute', (route) => {
    const requirement: AuthRequirement = route.config?.auth ?? 'none';
    if (requirement === 'none') return;
    const hook: preParsingHookHandler = (request, _reply, _payload, done) => {
      const header = request.headers.authorization;
      if (header === undefined) {
        done(requirement === 'optional' ? undefined : AppError.unauthorized());
        return;
      }
      const kept = grants.get(request.raw.socket);
      if (kept !== undefined) {
        const caller = kept.header === header ? sessions.basicFromGrant(kept) : undefined;
        if (caller) {
          settle(request, requirement, caller, done);
          return;
        }
        grants.delete(request.raw.socket);
      }
      const credentials = parseAuthorization(header);
      if (!credentials) {
        done(requirement === 'optional' ? undefined : AppError.unauthorized());
        return;
      }
      const known =
        credentials.scheme === 'bearer'
          ? sessions.bearerFromCache(credentials.token)
          : credentials.scheme === 'basic'
            ? sessions.basicFromCache(credentials.username, credentials.password)
            : null;
      if (known !== undefined) {
        if (known && credentials.scheme === 'basic') keepGrant(request, header, credentials);
        settle(request, requirement, known, done);
        return;
      }
      authenticate(credentials, request).then(
        (caller) => {
          if (caller && credentials.scheme === 'basic') keepGrant(request, header, credentials);
          settle(request, requirement, caller, done);
        },
        (error: Error) => done(error),
      );
    };
    route.preParsing = [hook, ...asArray(route.preParsing)];
  });
}

/** The caller of a route whose auth is 'user' or 'admin' (the hook has already required one). */
export function callerOf(request: FastifyRequest): Caller {
  if (!request.caller) throw AppError.unauthorized();
  return request.caller;
}
