// The origin Flask service's /api routes, same shapes, v1 rules for authentication and validation.
// POST /api/users alone also reads query-string parameters, as the origin's clients send them.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { callerOf, clientContext, parseAuthorization } from '../../http/auth.js';
import { AppError } from '../../http/errors.js';
import { errorResponses, IdParams, jsonResponse, locationHeader } from '../../http/schemas.js';
import { toIso } from '../../lib/time.js';
import type { SessionsService } from '../sessions/sessions.service.js';
import type { UserRow } from '../users/users.repository.js';
import { UpdateUserBody, USER_EXAMPLE } from '../users/users.schemas.js';
import type { UsersService } from '../users/users.service.js';
import type { UserView } from '../users/users.view.js';

const OriginUser = Type.Object({
  id: Type.String(),
  username: Type.String(),
  email: Type.String(),
  last_login: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const OriginCreate = Type.Object(
  { username: Type.String({ maxLength: 256 }), email: Type.String({ maxLength: 512 }), password: Type.String({ maxLength: 1024 }) },
  { additionalProperties: false },
);
const OriginCreateBody = Type.Object(OriginCreate.properties, {
  additionalProperties: false,
  examples: [{ username: 'alice', email: 'alice@example.com', password: 'correct horse battery staple' }],
});

const ORIGIN_USER_EXAMPLE = {
  id: USER_EXAMPLE.id,
  username: USER_EXAMPLE.username,
  email: USER_EXAMPLE.email,
  last_login: USER_EXAMPLE.last_login_at,
};

function toOrigin(user: UserRow | UserView) {
  return { id: user.id, username: user.username, email: user.email, last_login: toIso(user.last_login_at) };
}

export function registerCompatRoutes(app: FastifyInstance, users: UsersService, sessions: SessionsService): void {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();

  typed.get(
    '/api/users',
    {
      config: { auth: 'admin', reads: 'replica' },
      schema: {
        tags: ['origin'],
        summary: 'All users, in the origin shape (admin)',
        operationId: 'listOriginUsers',
        security: [{ basic: [] }, { bearer: [] }],
        response: {
          200: jsonResponse('Every user', Type.Array(OriginUser), [ORIGIN_USER_EXAMPLE]),
          ...errorResponses('unauthorized', 'forbidden'),
        },
      },
    },
    async () => (await users.listAll()).map(toOrigin),
  );

  typed.post(
    '/api/users',
    {
      config: { auth: 'optional', signIn: 'anonymous' },
      schema: {
        tags: ['origin'],
        summary: 'Create a user from a JSON or form body, or query-string parameters (admin; anyone with open sign-up)',
        operationId: 'createOriginUser',
        security: [{ basic: [] }, { bearer: [] }, {}],
        consumes: ['application/json', 'application/x-www-form-urlencoded'],
        // Read only when there is no body, for the origin's clients; never logged.
        querystring: Type.Partial(OriginCreate),
        body: OriginCreateBody,
        response: {
          201: jsonResponse('The created user', OriginUser, ORIGIN_USER_EXAMPLE, locationHeader(`/v1/users/${USER_EXAMPLE.id}`)),
          ...errorResponses(
            'invalid_request',
            'weak_password',
            'unauthorized',
            'forbidden',
            'username_taken',
            'email_taken',
            'payload_too_large',
            'unsupported_media_type',
          ),
        },
      },
      // The origin's clients send the fields as query parameters and no body.
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = { ...(request.query as object) } as typeof request.body;
      },
    },
    async (request, reply) => {
      const user = await users.create(request.body, request.caller);
      return reply.code(201).header('location', `/v1/users/${user.id}`).send(toOrigin(user));
    },
  );

  typed.get(
    '/api/login',
    {
      config: { auth: 'none', signIn: 'always' },
      schema: {
        tags: ['origin'],
        summary: 'Sign in with HTTP Basic and record the login time',
        operationId: 'originLogin',
        security: [{ basic: [] }],
        response: {
          200: jsonResponse(
            'Signed in; the login time is recorded',
            Type.Object({ message: Type.String(), last_login: Type.String({ format: 'date-time' }) }),
            { message: 'Hello, alice! Login successful at 2026-11-29T08:30:12.456Z', last_login: '2026-11-29T08:30:12.456Z' },
          ),
          ...errorResponses('unauthorized', 'overloaded'),
        },
      },
    },
    async (request) => {
      const credentials = parseAuthorization(request.headers.authorization);
      if (credentials?.scheme !== 'basic') throw AppError.unauthorized();
      const user = await sessions.basicLogin(credentials.username, credentials.password, clientContext(request));
      request.consistencySubject = user.id;
      const lastLogin = toIso(user.last_login_at) ?? new Date().toISOString();
      return { message: `Hello, ${user.username}! Login successful at ${lastLogin}`, last_login: lastLogin };
    },
  );

  typed.put(
    '/api/users/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['origin'],
        summary: 'Change a user, as PATCH /v1/users/{id} (admin)',
        operationId: 'updateOriginUser',
        security: [{ basic: [] }, { bearer: [] }],
        params: IdParams,
        body: UpdateUserBody,
        response: {
          200: jsonResponse('The user as changed', OriginUser, ORIGIN_USER_EXAMPLE),
          ...errorResponses(
            'invalid_request',
            'unauthorized',
            'forbidden',
            'not_found',
            'email_taken',
            'last_admin',
            'payload_too_large',
            'unsupported_media_type',
          ),
        },
      },
    },
    async (request) => toOrigin(await users.update(request.params.id, request.body, callerOf(request))),
  );

  typed.delete(
    '/api/users/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['origin'],
        summary: 'Delete a user, as DELETE /v1/users/{id} (admin)',
        operationId: 'deleteOriginUser',
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
}
