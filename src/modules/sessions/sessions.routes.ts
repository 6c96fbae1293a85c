// HTTP for sign-in (/v1/sessions), token refresh, logout and the JWKS document.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { callerOf, clientContext, parseAuthorization } from '../../http/auth.js';
import { AppError } from '../../http/errors.js';
import { errorResponses, jsonResponse } from '../../http/schemas.js';
import { USER_EXAMPLE } from '../users/users.schemas.js';
import type { LoginMethod, SessionsService } from './sessions.service.js';
import type { TokenIssuer } from './tokens.js';

const SignInBody = Type.Object(
  {
    username: Type.String({ maxLength: 256, examples: ['alice'] }),
    password: Type.String({ maxLength: 1024, examples: ['correct horse battery staple'] }),
  },
  { additionalProperties: false, examples: [{ username: 'alice', password: 'correct horse battery staple' }] },
);

const RefreshBody = Type.Object(
  { refresh_token: Type.String({ minLength: 1, maxLength: 512 }) },
  { additionalProperties: false, examples: [{ refresh_token: 'Zq3y8mV1bW4cT7nP0sK2dR6fH9jL5xA1eU3oI8gY2wQ' }] },
);

const TokenPairSchema = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires', examples: [900] }),
  refresh_token: Type.String(),
  user: Type.Ref('User'),
});

const TOKEN_PAIR_EXAMPLE = {
  access_token:
    'eyJhbGciOiJFZERTQSIsImtpZCI6Ik1uVjJZMEZQIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiIwMTlhY2IzZS04ZDJhIn0.c2lnbmF0dXJlLXNob3J0ZW5lZA',
  token_type: 'Bearer',
  expires_in: 900,
  refresh_token: 'Zq3y8mV1bW4cT7nP0sK2dR6fH9jL5xA1eU3oI8gY2wQ',
  user: USER_EXAMPLE,
};

const JwksSchema = Type.Object({
  keys: Type.Array(Type.Object({ kid: Type.String(), kty: Type.String() }, { additionalProperties: true })),
});
const JWKS_EXAMPLE = {
  keys: [
    {
      kty: 'OKP',
      crv: 'Ed25519',
      x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo',
      kid: 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k',
      alg: 'EdDSA',
      use: 'sig',
    },
  ],
};

declare module 'fastify' {
  interface FastifyRequest {
    signInMethod?: LoginMethod;
  }
}

export function registerSessionsRoutes(app: FastifyInstance, sessions: SessionsService, tokens: TokenIssuer): void {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();

  typed.post(
    '/v1/sessions',
    {
      config: { auth: 'none', signIn: 'always' },
      schema: {
        tags: ['sessions'],
        summary: 'Sign in with a JSON body, or with a Basic header and no body',
        operationId: 'signIn',
        security: [{}, { basic: [] }],
        body: SignInBody,
        response: {
          201: jsonResponse('An access token and a refresh token, with the signed-in user', TokenPairSchema, TOKEN_PAIR_EXAMPLE),
          ...errorResponses('invalid_request', 'unauthorized', 'payload_too_large', 'unsupported_media_type', 'overloaded'),
        },
      },
      // A Basic header with no body is a sign-in too: give the validator the same shape.
      preValidation: async (request) => {
        request.signInMethod = 'password';
        if (request.body !== undefined && request.body !== null) return;
        const credentials = parseAuthorization(request.headers.authorization);
        if (credentials?.scheme === 'basic') {
          request.body = { username: credentials.username, password: credentials.password };
          request.signInMethod = 'basic';
        } else if (credentials) {
          throw AppError.unauthorized();
        }
      },
    },
    async (request, reply) => {
      const pair = await sessions.signIn(
        request.body.username,
        request.body.password,
        request.signInMethod ?? 'password',
        clientContext(request),
      );
      request.consistencySubject = pair.user.id;
      return reply.code(201).send(pair);
    },
  );

  typed.post(
    '/v1/sessions/refresh',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['sessions'],
        summary: 'Exchange a refresh token for a new pair (the old refresh token stops working)',
        operationId: 'refreshSession',
        security: [],
        body: RefreshBody,
        response: {
          200: jsonResponse('A new pair; the refresh token sent no longer works', TokenPairSchema, TOKEN_PAIR_EXAMPLE),
          ...errorResponses('invalid_request', 'unauthorized', 'payload_too_large', 'unsupported_media_type'),
        },
      },
    },
    async (request) => sessions.refresh(request.body.refresh_token),
  );

  typed.delete(
    '/v1/sessions/current',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['sessions'],
        summary: "Sign out: end the Bearer token's session on every instance",
        operationId: 'signOut',
        security: [{ bearer: [] }],
        response: {
          204: Type.Null({ description: 'The session is ended; its tokens no longer work' }),
          ...errorResponses('invalid_request', 'unauthorized'),
        },
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      if (!caller.sessionId) {
        throw AppError.invalid([{ field: 'authorization', message: 'Basic authentication has no session; send the Bearer token' }]);
      }
      await sessions.revoke(caller.user.id, caller.sessionId);
      return reply.code(204).send(null);
    },
  );

  typed.get(
    '/.well-known/jwks.json',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['sessions'],
        summary: 'Public keys that verify access tokens (RFC 7517)',
        operationId: 'getJwks',
        security: [],
        response: { 200: jsonResponse('The JSON Web Key Set', JwksSchema, JWKS_EXAMPLE), ...errorResponses() },
      },
    },
    // Cache-Control (a third of the key activation delay) and ETag come from src/http/caching.ts.
    async () => tokens.jwks(),
  );
}
