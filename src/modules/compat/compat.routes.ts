// The origin Flask service's /api routes, same shapes, v1 rules for authentication and validation.
// POST /api/users alone also reads query-string parameters, as the origin's clients send them.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { callerOf, clientContext, parseAuthorization } from '../../http/auth.js';
import { AppError } from '../../http/errors.js';
import { errorResponses, IdParams } from '../../http/schemas.js';
import { toIso } from '../../lib/time.js';
import type { SessionsService } from '../sessions/sessions.service.js';
import type { UserRow } from '../users/users.repository.js';
import { UpdateUserBody } from '../users/users.schemas.js';
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

function toOrigin(user: UserRow | UserView) {
  return { id: user.id, username: user.username, email: user.email, last_login: toIso(user.last_login_at) };
}

export function registerCompatRoutes(app: FastifyInstance, users: UsersService, sessions: SessionsService): void {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();

  typed.get(
    '/api/users',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['origin'],
        summary: 'All users, in the origin shape (admin)',
        security: [{ basic: [] }, { bearer: [] }],
        response: { 200: Type.Array(OriginUser), ...errorResponses('unauthorized', 'forbidden') },
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
        security: [{ basic: [] }, { bearer: [] }, {}],
        consumes: ['application/json', 'application/x-www-form-urlencoded'],
        // Read only when there is no body, for the origin's clients; never logged.
        querystring: Type.Partial(OriginCreate),
        body: OriginCreate,
        response: {
          201: OriginUser,
          ...errorResponses('invalid_request', 'weak_password', 'unauthorized', 'forbidden', 'username_taken', 'email_taken'),
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
        security: [{ basic: [] }],
        response: {
          200: Type.Object({ message: Type.String(), last_login: Type.String({ format: 'date-time' }) }),
          ...errorResponses('unauthorized'),
        },
      },
    },
    async (request) => {
      const credentials = parseAuthorization(request.headers.authorization);
      if (credentials?.scheme !== 'basic') throw AppError.unauthorized();
      const user = await sessions.basicLogin(credentials.username, credentials.password, clientContext(request));
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
        security: [{ basic: [] }, { bearer: [] }],
        params: IdParams,
        body: UpdateUserBody,
        response: {
          200: OriginUser,
          ...errorResponses('invalid_request', 'unauthorized', 'forbidden', 'not_found', 'email_taken', 'last_admin'),
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
        security: [{ basic: [] }, { bearer: [] }],
        params: IdParams,
        response: { 204: Type.Null(), ...errorResponses('unauthorized', 'forbidden', 'not_found', 'last_admin') },
      },
    },
    async (request, reply) => {
      await users.remove(request.params.id);
      return reply.code(204).send(null);
    },
  );
}
