// HTTP for /v1/users: schemas and short handlers that call the users service.
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { callerOf } from '../../http/auth.js';
import { AppError } from '../../http/errors.js';
import { errorResponses, IdParams, jsonResponse, locationHeader, sendJsonText } from '../../http/schemas.js';
import { fingerprintOf, type Idempotency, IdempotencyHeaders, idempotencyOf, replay } from '../idempotency/idempotency.js';
import type { UserListCache } from './list-cache.js';
import type { UserSort } from './users.repository.js';
import {
  ChangePasswordBody,
  CreateUserBody,
  ListUsersQuery,
  LOGIN_HISTORY_EXAMPLE,
  LoginHistoryPage,
  LoginHistoryQuery,
  UpdateUserBody,
  USER_EXAMPLE,
  USER_PAGE_EXAMPLE,
  UserPage,
  UserSchema,
} from './users.schemas.js';
import type { UsersService } from './users.service.js';
import { toUserView } from './users.view.js';

const UserRef = Type.Ref('User');

/** GET /v1/users/me's body for a user view (views are made once per row: users.view.ts). */
const serializedViews = new WeakMap<object, string>();

export function registerUsersRoutes(app: FastifyInstance, users: UsersService, idempotency: Idempotency, pages: UserListCache): void {
  const typed = app.withTypeProvider<import('@fastify/type-provider-typebox').TypeBoxTypeProvider>();
  app.addSchema(UserSchema);

  typed.post(
    '/v1/users',
    {
      config: { auth: 'optional', signIn: 'anonymous' },
      schema: {
        tags: ['users'],
        summary: 'Create a user (admin; anyone when open sign-up is enabled)',
        operationId: 'createUser',
        security: [{ basic: [] }, { bearer: [] }, {}],
        body: CreateUserBody,
        headers: IdempotencyHeaders,
        response: {
          201: jsonResponse('The created user', UserRef, USER_EXAMPLE, locationHeader(`/v1/users/${USER_EXAMPLE.id}`)),
          ...errorResponses(
            'invalid_request',
            'weak_password',
            'unauthorized',
            'forbidden',
            'username_taken',
            'email_taken',
            'idempotency_key_reused',
            'payload_too_large',
            'unsupported_media_type',
          ),
        },
      },
    },
    async (request, reply) => {
      const retry = idempotencyOf(request, fingerprintOf('POST /v1/users', request.body));
      if (retry) {
        const stored = await idempotency.stored(retry);
        if (stored) return replay(reply, stored);
      }
      try {
        const user = await users.create(request.body, request.caller, {
          beforeCommit: retry
            ? (trx, view) => idempotency.save(trx, retry, { status: 201, location: `/v1/users/${view.id}`, body: JSON.stringify(view) })
            : undefined,
        });
        return reply.code(201).header('location', `/v1/users/${user.id}`).send(user);
      } catch (error) {
        if (!retry) throw error;
        // The same request, racing this one, committed first: answer as it did.
        // (422 if the key went with another request; a failed lookup gives way to the first error.)
        const winner = await idempotency.stored(retry).catch((lookup) => {
          if (lookup instanceof AppError) throw lookup;
          return undefined;
        });
        if (winner) return replay(reply, winner);
        throw error;
      }
    },
  );

  typed.get(
    '/v1/users',
    {
      config: { auth: 'admin', reads: 'replica' },
      schema: {
        tags: ['users'],
        summary: 'List users with filters, sorting and keyset pagination (admin)',
        operationId: 'listUsers',
        security: [{ basic: [] }, { bearer: [] }],
        querystring: ListUsersQuery,
        response: {
          200: jsonResponse('A page of users; pass next_cursor as cursor for the next page', UserPage, USER_PAGE_EXAMPLE),
          ...errorResponses('invalid_request', 'unauthorized', 'forbidden'),
        },
      },
    },
    // The same query within GATEHOUSE_USER_LIST_CACHE_MS gets the same serialized page
    // (list-cache.ts says when it is not used); an invalid query throws and stores nothing. A page
    // in the cache is sent at once, without the promise (and the wait on the reply) of an async
    // handler.
    (request, reply) => {
      const hit = pages.cached(request.url);
      if (hit !== undefined) {
        sendJsonText(reply, hit);
        return;
      }
      const fromStore = async () => {
        const body = await pages.page(request.url, async () =>
          Buffer.from(
            String(
              reply.serializeInput(await users.list({ ...request.query, sort: request.query.sort as UserSort }), '200', 'application/json'),
            ),
          ),
        );
        return sendJsonText(reply, body);
      };
      return fromStore();
    },
  );

  typed.get(
    '/v1/users/me',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['users'],
        summary: 'The signed-in user',
        operationId: 'getCurrentUser',
        security: [{ basic: [] }, { bearer: [] }],
        response: { 200: jsonResponse('The caller', UserRef, USER_EXAMPLE), ...errorResponses('unauthorized') },
      },
    },
    // The authentication has the caller's row (from the primary, at most GATEHOUSE_AUTH_CACHE_MS
    // old and forgotten on any change: caller-cache.ts): answer with it rather than reading it again,
    // at once (a sync handler: no promise), and serialized once per row.
    (request, reply) => {
      const view = toUserView(callerOf(request).user);
      let body = serializedViews.get(view);
      if (body === undefined) {
        body = String(reply.serializeInput({ ...view }, '200', 'application/json'));
        serializedViews.set(view, body);
      }
      sendJsonText(reply, body);
    },
  );

  typed.put(
    '/v1/users/me/password',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['users'],
        summary: "Change the caller's own password; ends the caller's other sessions",
        operationId: 'changeOwnPassword',
        security: [{ basic: [] }, { bearer: [] }],
        body: ChangePasswordBody,
        response: {
          204: Type.Null({ description: "The password is changed; the caller's other sessions are ended" }),
          ...errorResponses('invalid_request', 'weak_password', 'unauthorized', 'payload_too_large', 'unsupported_media_type'),
        },
      },
    },
    async (request, reply) => {
      await users.changeOwnPassword(callerOf(request), request.body.current_password, request.body.new_password);
      return reply.code(204).send(null);
    },
  );

  typed.get(
    '/v1/users/:id',
    {
      config: { auth: 'user', reads: 'replica' },
      schema: {
        tags: ['users'],
        summary: 'One user (admin, or the user itself)',
        operationId: 'getUser',
        security: [{ basic: [] }, { bearer: [] }],
        params: IdParams,
        response: {
          200: jsonResponse('The user', UserRef, USER_EXAMPLE),
          ...errorResponses('invalid_request', 'unauthorized', 'not_found'),
        },
      },
    },
    async (request) => users.get(request.params.id, callerOf(request)),
  );

  typed.patch(
    '/v1/users/:id',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['users'],
        summary: 'Change a user (admin: email, display_name, roles, status; the user itself: email, display_name)',
        operationId: 'updateUser',
        security: [{ basic: [] }, { bearer: [] }],
        params: IdParams,
        body: UpdateUserBody,
        response: {
          200: jsonResponse('The user as changed', UserRef, USER_EXAMPLE),
          ...errorResponses(
            'invalid_request',
            'unauthorized',
            'not_found',
            'email_taken',
            'last_admin',
            'payload_too_large',
            'unsupported_media_type',
          ),
        },
      },
    },
    async (request) => users.update(request.params.id, request.body, callerOf(request)),
  );

  typed.delete(
    '/v1/users/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['users'],
        summary: 'Delete a user and end its sessions (admin)',
        operationId: 'deleteUser',
        security: [{ basic: [] }, { bearer: [] }],
        params: IdParams,
        response: {
          204: Type.Null({ description: 'The user and its sessions are gone' }),
          ...errorResponses('invalid_request', 'unauthorized', 'forbidden', 'not_found', 'last_admin'),
        },
      },
    },
    async (request, reply) => {
      await users.remove(request.params.id);
      return reply.code(204).send(null);
    },
  );

  typed.get(
    '/v1/users/:id/logins',
    {
      config: { auth: 'user', reads: 'replica' },
      schema: {
        tags: ['users'],
        summary: "A user's sign-in history, newest first (admin, or the user itself)",
        operationId: 'listUserLogins',
        security: [{ basic: [] }, { bearer: [] }],
        params: IdParams,
        querystring: LoginHistoryQuery,
        response: {
          200: jsonResponse('A page of sign-ins, newest first', LoginHistoryPage, LOGIN_HISTORY_EXAMPLE),
          ...errorResponses('invalid_request', 'unauthorized', 'not_found'),
        },
      },
    },
    async (request) => users.loginHistory(request.params.id, callerOf(request), request.query.limit, request.query.cursor),
  );

  // The admin console's "set a new password" and "sign out everywhere" for another user.
  typed.put(
    '/v1/users/:id/password',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['users'],
        summary: "Set a user's password without the current one (admin); ends every session of that user",
        operationId: 'setUserPassword',
        security: [{ basic: [] }, { bearer: [] }],
        params: IdParams,
        body: Type.Object(
          { new_password: Type.String({ maxLength: 1024 }) },
          { additionalProperties: false, examples: [{ new_password: 'a new long passphrase' }] },
        ),
        response: {
          204: Type.Null({ description: 'The password is set and every session of the user has ended' }),
          ...errorResponses(
            'invalid_request',
            'weak_password',
            'unauthorized',
            'forbidden',
            'not_found',
            'payload_too_large',
            'unsupported_media_type',
          ),
        },
      },
    },
    async (request, reply) => {
      await users.resetPassword(request.params.id, request.body.new_password);
      return reply.code(204).send(null);
    },
  );

  typed.delete(
    '/v1/users/:id/sessions',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['users'],
        summary: 'End every session of a user on every instance (admin)',
        operationId: 'revokeUserSessions',
        security: [{ basic: [] }, { bearer: [] }],
        params: IdParams,
        response: {
          200: jsonResponse(
            'The sessions have ended; their access and refresh tokens stop working',
            Type.Object({ revoked: Type.Integer({ minimum: 0, description: 'How many live sessions ended' }) }),
            { revoked: 2 },
          ),
          ...errorResponses('invalid_request', 'unauthorized', 'forbidden', 'not_found'),
        },
      },
    },
    async (request) => ({ revoked: await users.revokeSessions(request.params.id) }),
  );
}
