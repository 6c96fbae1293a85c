// HTTP for bulk imports: POST /v1/imports takes NDJSON or CSV as a stream and answers 202 with the
// job; GET /v1/imports/{id} reports its progress. Admins only.
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { callerOf } from '../../http/auth.js';
import { AppError } from '../../http/errors.js';
import { errorResponses, IdParams, jsonResponse, locationHeader } from '../../http/schemas.js';
import { type Idempotency, IdempotencyHeaders, idempotencyOf, replay } from '../idempotency/idempotency.js';
import type { ImportsService } from './imports.service.js';

const FORMATS: Record<string, 'ndjson' | 'csv'> = {
  'application/x-ndjson': 'ndjson',
  'application/jsonl': 'ndjson',
  'text/csv': 'csv',
};

const ImportStatus = Type.Object(
  {
    id: Type.String(),
    status: Type.Union([Type.Literal('receiving'), Type.Literal('queued'), Type.Literal('completed'), Type.Literal('failed')]),
    format: Type.Union([Type.Literal('ndjson'), Type.Literal('csv')]),
    rows_read: Type.Integer(),
    created: Type.Integer(),
    skipped: Type.Integer({ description: 'Rows whose username or email already existed' }),
    failed: Type.Integer(),
    failures: Type.Array(Type.Object({ row: Type.Integer(), reason: Type.String() }), { description: 'The first 100 failed rows' }),
    error: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
    finished_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'ImportStatus' },
);

const IMPORT_STATUS_EXAMPLE = {
  id: '019acb40-1c2d-7e3f-8a4b-5c6d7e8f9a0b',
  status: 'completed',
  format: 'ndjson',
  rows_read: 3,
  created: 1,
  skipped: 1,
  failed: 1,
  failures: [{ row: 3, reason: 'email: must be a valid email address' }],
  error: null,
  created_at: '2026-11-28T04:10:00.123Z',
  updated_at: '2026-11-28T04:10:02.456Z',
  finished_at: '2026-11-28T04:10:02.456Z',
};

/**
 * The upload, for the document only: the body reaches the handler as a stream (see the content
 * type parser below) and is validated row by row by the importer, never as a whole.
 */
function uploadSchema(description: string, example: string) {
  return { schema: Type.Unsafe<NodeJS.ReadableStream>({ type: 'string', description, examples: [example] }) };
}
const ImportUpload = {
  content: {
    'application/x-ndjson': uploadSchema(
      'One JSON object per line',
      [
        '{"username":"alice","email":"alice@example.com","password":"correct horse battery staple"}',
        '{"username":"bob","email":"bob@example.com","password_hash":"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g","roles":["user"]}',
        '',
      ].join('\n'),
    ),
    'application/jsonl': uploadSchema(
      'The same as application/x-ndjson',
      '{"username":"alice","email":"alice@example.com","password":"correct horse battery staple"}\n',
    ),
    'text/csv': uploadSchema(
      'RFC 4180, with a header row naming the columns; roles separated by ";"',
      'username,email,password,display_name,roles\nalice,alice@example.com,correct horse battery staple,Alice Liddell,user\n',
    ),
  },
};

/** Passes bytes through, failing the stream once more than `limit` went by. */
function limitBytes(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > limit) callback(new AppError('payload_too_large', `Imports are limited to ${limit} bytes.`));
      else callback(null, chunk);
    },
  });
}

export async function registerImportsRoutes(
  app: FastifyInstance,
  imports: ImportsService,
  idempotency: Idempotency,
  maxBytes: number,
): Promise<void> {
  await app.register(async (scope) => {
    // The body reaches the handler as a stream: it is read row by row, never held whole.
    scope.addContentTypeParser(Object.keys(FORMATS), (_request, payload, done) => done(null, payload));
    const typed = scope.withTypeProvider<TypeBoxTypeProvider>();
    scope.addSchema(ImportStatus);

    typed.post(
      '/v1/imports',
      {
        config: { auth: 'admin' },
        bodyLimit: maxBytes,
        // The body schema documents the upload; the stream itself is checked by the importer.
        validatorCompiler: (route) => {
          if (route.httpPart === 'body') return () => true;
          if (!scope.validatorCompiler) throw new Error('buildApp sets the validator compiler before any route');
          return scope.validatorCompiler(route);
        },
        schema: {
          tags: ['imports'],
          summary: 'Import users from NDJSON or CSV (streamed); 202 with the job, processed by workers (admin)',
          operationId: 'createImport',
          description:
            'One user per row: username, email, and either password (plaintext, hashed by the workers) or password_hash (argon2, scrypt, bcrypt or werkzeug pbkdf2); optional display_name, roles, last_login_at.',
          security: [{ basic: [] }, { bearer: [] }],
          body: ImportUpload,
          headers: IdempotencyHeaders,
          response: {
            202: jsonResponse(
              'The job, as received; its rows are processed by the workers',
              Type.Ref('ImportStatus'),
              {
                ...IMPORT_STATUS_EXAMPLE,
                status: 'queued',
                rows_read: 3,
                created: 0,
                skipped: 0,
                failed: 0,
                failures: [],
                finished_at: null,
              },
              locationHeader(`/v1/imports/${IMPORT_STATUS_EXAMPLE.id}`),
            ),
            ...errorResponses(
              'invalid_request',
              'unauthorized',
              'forbidden',
              'idempotency_key_reused',
              'payload_too_large',
              'unsupported_media_type',
              'unavailable',
            ),
          },
        },
      },
      async (request, reply) => {
        const mediaType = String(request.headers['content-type'] ?? '')
          .split(';')[0]
          ?.trim()
          .toLowerCase();
        const format = FORMATS[mediaType ?? ''];
        if (!format || !request.body) throw new AppError('unsupported_media_type', 'Send application/x-ndjson or text/csv.');
        if (Number(request.headers['content-length']) > maxBytes) {
          throw new AppError('payload_too_large', `Imports are limited to ${maxBytes} bytes.`);
        }
        const source = request.body as NodeJS.ReadableStream;
        const body = source.pipe(limitBytes(maxBytes));
        source.on('error', (error) => body.destroy(error));
        // The parser reads a stream error when it reaches it; an error before it starts reading (the
        // limit crossed while the job row is written) must not be an unhandled 'error' event (a crash).
        body.on('error', () => {});
        // With an Idempotency-Key, the fingerprint is the upload's SHA-256, known once it is read.
        const digest = createHash('sha256');
        const hashed = body.pipe(
          new Transform({
            transform(chunk: Buffer, _encoding, callback: TransformCallback) {
              digest.update(chunk);
              callback(null, chunk);
            },
          }),
        );
        body.on('error', (error) => hashed.destroy(error));
        hashed.on('error', () => {});
        const retry = idempotencyOf(request, '');
        let uploadDigest: string | null = null;
        const fingerprint = () => {
          uploadDigest ??= digest.digest('base64url');
          return `POST /v1/imports ${format} ${uploadDigest}`;
        };
        // A replay answers with the job's status now (the stored response is only its location).
        const replayJob = async (row: { location: string | null } & Parameters<typeof replay>[1]) =>
          replay(reply, row, await imports.status(row.location?.slice('/v1/imports/'.length) ?? ''));
        if (retry && (await idempotency.peek(retry))) {
          // Known key: read the upload only to compare it with the first one (422 if it differs).
          for await (const _ of hashed);
          retry.fingerprint = fingerprint();
          const row = await idempotency.stored(retry);
          if (row) return replayJob(row);
          // It expired while the upload was read, and the upload is spent: the client sends it again.
          throw new AppError('unavailable', 'The Idempotency-Key expired while the upload was read; send the request again.', {
            headers: { 'retry-after': '1' },
          });
        }
        let jobId: string;
        try {
          jobId = await imports.start(hashed, format, callerOf(request).user.id, {
            beforeQueue: retry
              ? async (trx, id) => {
                  retry.fingerprint = fingerprint();
                  await idempotency.save(trx, retry, { status: 202, location: `/v1/imports/${id}`, body: null });
                }
              : undefined,
          });
        } catch (error) {
          // The same upload, racing this one, was queued first: answer as it did (422 if it was another).
          if (retry?.fingerprint) {
            const winner = await idempotency.stored(retry);
            if (winner) return replayJob(winner);
          }
          if (error instanceof AppError) throw error;
          throw new AppError('invalid_request', 'The upload ended before it was complete.', { cause: error });
        }
        return reply
          .code(202)
          .header('location', `/v1/imports/${jobId}`)
          .send(await imports.status(jobId));
      },
    );

    typed.get(
      '/v1/imports/:id',
      {
        config: { auth: 'admin' },
        schema: {
          tags: ['imports'],
          summary: "An import's progress: rows read, created, skipped, failed (with row numbers and reasons)",
          operationId: 'getImport',
          security: [{ basic: [] }, { bearer: [] }],
          params: IdParams,
          response: {
            200: jsonResponse('The job and its progress', Type.Ref('ImportStatus'), IMPORT_STATUS_EXAMPLE),
            ...errorResponses('invalid_request', 'unauthorized', 'forbidden', 'not_found'),
          },
        },
      },
      async (request) => imports.status(request.params.id),
    );
  });
}
