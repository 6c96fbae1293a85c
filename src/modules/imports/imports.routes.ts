// HTTP for bulk imports: POST /v1/imports takes NDJSON or CSV as a stream and answers 202 with the
// job; GET /v1/imports/{id} reports its progress. Admins only.
import { Transform, type TransformCallback } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { callerOf } from '../../http/auth.js';
import { AppError } from '../../http/errors.js';
import { errorResponses, IdParams } from '../../http/schemas.js';
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

export async function registerImportsRoutes(app: FastifyInstance, imports: ImportsService, maxBytes: number): Promise<void> {
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
        schema: {
          tags: ['imports'],
          summary: 'Import users from NDJSON or CSV (streamed); 202 with the job, processed by workers (admin)',
          description:
            'One user per row: username, email, and either password (plaintext, hashed by the workers) or password_hash (argon2, scrypt, bcrypt or werkzeug pbkdf2); optional display_name, roles, last_login_at.',
          security: [{ basic: [] }, { bearer: [] }],
          consumes: Object.keys(FORMATS),
          response: {
            202: Type.Ref('ImportStatus'),
            ...errorResponses('invalid_request', 'unauthorized', 'forbidden', 'payload_too_large', 'unsupported_media_type'),
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
        let jobId: string;
        try {
          jobId = await imports.start(body, format, callerOf(request).user.id);
        } catch (error) {
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
          security: [{ basic: [] }, { bearer: [] }],
          params: IdParams,
          response: { 200: Type.Ref('ImportStatus'), ...errorResponses('unauthorized', 'forbidden', 'not_found') },
        },
      },
      async (request) => imports.status(request.params.id),
    );
  });
}
