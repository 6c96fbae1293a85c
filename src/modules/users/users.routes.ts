// HTTP for /v1/users: schemas and short handlers that call the users service.
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { callerOf } from '../../http/auth.js';
import { errorResponses, IdParams } from '../../http/schemas.js';
import type { UserSort } from './users.repository.js';
import {
  ChangePasswordBody,
  CreateUserBody,
  ListUsersQuery,
  LoginHistoryPage,
  LoginHistoryQuery,
  UpdateUserBody,
  UserPage,
  UserSchema,
} from './users.schemas.js';
import type { UsersService } from './users.service.js';

const UserRef = Type.Ref('User');

export function registerUsersRoutes(app: FastifyInstance, users: UsersService): void {
  const typed = app.withTypeProvider<import('@fastify/type-provider-typebox').TypeBoxTypeProvider>();
  app.addSchema(UserSchema);

  typed.post(
    '/v1/users',
    {
      config: { auth: 'optional', signIn: 'anonymous' },
      schema: {
        tags: ['users'],
        summary: 'Create a user (admin; anyone when open sign-up is enabled)',
        security: [{ basic: [] }, { bearer: [] }, {}],
        body: CreateUserBody,
        response: {
          201: UserRef,
          ...errorResponses('invalid_request', 'weak_password', 'unauthorized', 'forbidden', 'username_taken', 'email_taken'),
        },
      },
    },
    async (request, reply) => {
      const user = await users.create(request.body, request.caller);
      return reply.code(201).header('location', `/v1/users/${user.id}`).send(user);
    },
  );

  typed.get(
    '/v1/users',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['users'],
        summary: 'List users with filters, sorting and keyset pagination (admin)',
        security: [{ basic: [] }, { bearer: [] }],
        querystring: ListUsersQuery,
        response: { 200: UserPage, ...errorResponses('invalid_request', 'unauthorized', 'forbidden') },
      },
    },
    async (request) => users.list({ ...request.query, sort: request.query.sort as UserSort }),
  );

  typed.get(
    '/v1/users/me',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['users'],
        summary: 'The signed-in user',
        security: [{ basic: [] }, { bearer: [] }],
        response: { 200: UserRef, ...errorResponses('unauthorized') },
      },
    },
    async (request) => {
      const caller = callerOf(request);
      return users.get(caller.user.id, caller);
    },
  );

  typed.put(
    '/v1/users/me/password',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['users'],
        summary: "Change the caller's own password; ends the caller's other sessions",
        security: [{ basic: [] }, { bearer: [] }],
        body: ChangePasswordBody,
        response: { 204: Type.Null(), ...errorResponses('invalid_request', 'weak_password', 'unauthorized') },
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
      config: { auth: 'user' },
      schema: {
        tags: ['users'],
        summary: 'One user (admin, or the user itself)',
        security: [{ basic: [] }, { bearer: [] }],
        params: IdParams,
        response: { 200: UserRef, ...errorResponses('unauthorized', 'not_found') },
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
        security: [{ basic: [] }, { bearer: [] }],
        params: IdParams,
        body: UpdateUserBody,
        response: {
          200: UserRef,
          ...errorResponses('invalid_request', 'unauthorized', 'not_found', 'email_taken', 'last_admin'),
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

  typed.get(
    '/v1/users/:id/logins',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['users'],
        summary: "A user's sign-in history, newest first (admin, or the user itself)",
        security: [{ basic: [] }, { bearer: [] }],
        params: IdParams,
        querystring: LoginHistoryQuery,
        response: { 200: LoginHistoryPage, ...errorResponses('invalid_request', 'unauthorized', 'not_found') },
      },
    },
    async (request) => users.loginHistory(request.params.id, callerOf(request), request.query.limit, request.query.cursor),
  );
}
