// Idempotency-Key for POSTs that create something (POST /v1/users, POST /v1/imports), after the
// IETF draft "The Idempotency-Key HTTP Header Field" and Stripe's practice: the first successful
// response is stored with the key, in the same transaction as the work, for 24 hours. A retry with
// the same key and the same request gets that response again (`Idempotent-Replayed: true`); the
// same key with a different request is 422. Keys are per caller (the admin, or "anonymous" for
// open sign-up). Two identical requests racing each other both run, but only one can commit: the
// other's transaction fails on the key and it answers with the winner's response.
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../../http/errors.js';
import { sendJsonText } from '../../http/schemas.js';
import { nowIso } from '../../lib/time.js';
import type { Executor } from '../users/users.repository.js';
import type { IdempotencyRepository, IdempotencyRow } from './idempotency.repository.js';

export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** The request header, for route schemas (validation and the OpenAPI document). */
export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      description:
        'Makes a retry safe: the first successful response is stored for 24 hours and sent again (with Idempotent-Replayed: true) for a retry with the same key and body.',
      examples: ['5b0f6c1e-8d0a-4f6b-9a53-2f1d7c9e4a10'],
    }),
  ),
});
const RETENTION_MS = 24 * 60 * 60 * 1000;
// Visible ASCII, as the draft's examples and every major API accept; long enough for a UUID or a hash.
const SANE_KEY = /^[\x21-\x7e]{1,255}$/;

export interface IdempotentRequest {
  scope: string;
  key: string;
  fingerprint: string;
}

/** The request's key, scope and fingerprint, or null without an Idempotency-Key header. */
export function idempotencyOf(request: FastifyRequest, fingerprint: string): IdempotentRequest | null {
  const sent = request.headers[IDEMPOTENCY_HEADER];
  if (sent === undefined) return null;
  if (typeof sent !== 'string' || !SANE_KEY.test(sent)) {
    throw AppError.invalid([{ field: 'Idempotency-Key', message: 'must be 1-255 visible ASCII characters, such as a UUID' }]);
  }
  return { scope: request.caller?.user.id ?? 'anonymous', key: sent, fingerprint };
}

/** A fingerprint of what the request asks for: method, route and the parsed body. */
export function fingerprintOf(route: string, body: unknown): string {
  return createHash('sha256')
    .update(route)
    .update('\n')
    .update(JSON.stringify(body ?? null))
    .digest('base64url');
}

export function createIdempotency(repository: IdempotencyRepository) {
  return {
    /** Whether a response is stored for the key, whatever the request (fingerprint not known yet). */
    async peek(request: Pick<IdempotentRequest, 'scope' | 'key'>): Promise<boolean> {
      return (await repository.find(request.scope, request.key, nowIso())) !== undefined;
    },

    /** The stored response for this request's key; 422 when the key was used for another request. */
    async stored(request: IdempotentRequest): Promise<IdempotencyRow | undefined> {
      const row = await repository.find(request.scope, request.key, nowIso());
      if (row && row.fingerprint !== request.fingerprint) {
        throw new AppError(
          'idempotency_key_reused',
          'This Idempotency-Key was already used for a different request; use a new key for a new request.',
        );
      }
      return row;
    },

    /** Stores the response inside the transaction that did the work. */
    async save(trx: Executor, request: IdempotentRequest, response: { status: number; location: string | null; body: string | null }) {
      const now = new Date();
      await repository.insert(
        {
          scope: request.scope,
          key: request.key,
          fingerprint: request.fingerprint,
          status_code: response.status,
          location: response.location,
          body: response.body,
          created_at: now.toISOString(),
          expires_at: new Date(now.getTime() + RETENTION_MS).toISOString(),
        },
        trx,
      );
    },

    deleteExpired: () => repository.deleteExpired(nowIso()),
  };
}

export type Idempotency = ReturnType<typeof createIdempotency>;

/** Sends a stored response again; `body` replaces the stored body when given (a fresh status). */
export function replay(reply: FastifyReply, row: IdempotencyRow, body?: unknown): FastifyReply {
  reply.code(row.status_code).header('idempotent-replayed', 'true');
  if (row.location) reply.header('location', row.location);
  if (body !== undefined) return reply.send(body);
  return sendJsonText(reply, row.body ?? '');
}
