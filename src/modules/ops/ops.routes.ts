// Operations endpoints: liveness, readiness (database answers and migrations applied), Prometheus
// metrics and the generated OpenAPI document.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { Type } from 'typebox';
import { ping } from '../../db/database.js';
import { pendingMigrations } from '../../db/migrate.js';
import type { Database } from '../../db/schema.js';
import { AppError } from '../../http/errors.js';
import type { Metrics } from '../../http/metrics.js';
import { errorResponses, jsonResponse } from '../../http/schemas.js';

const Status = Type.Object({ status: Type.String() });
const METRICS_EXAMPLE = [
  '# HELP gatehouse_http_request_duration_seconds HTTP request duration by method, route pattern and status code.',
  '# TYPE gatehouse_http_request_duration_seconds histogram',
  'gatehouse_http_request_duration_seconds_count{method="GET",route="/v1/users/:id",status="200"} 42',
  '',
].join('\n');

export function registerOpsRoutes(
  app: FastifyInstance,
  db: Kysely<Database>,
  metrics: Metrics,
  lifecycle: { readonly draining: boolean } = { draining: false },
): void {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  let migrated = false;

  typed.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness: 200 while the process serves',
        operationId: 'getHealth',
        security: [],
        response: { 200: jsonResponse('The process serves', Status, { status: 'ok' }), ...errorResponses() },
      },
    },
    async () => ({ status: 'ok' }),
  );

  typed.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: 200 when the database answers and migrations are applied',
        operationId: 'getReadiness',
        security: [],
        response: {
          200: jsonResponse('The database answers and the migrations are applied', Status, { status: 'ready' }),
          ...errorResponses('unavailable'),
        },
      },
    },
    async () => {
      if (lifecycle.draining) throw new AppError('unavailable', 'This instance is shutting down.', { headers: { 'retry-after': '5' } });
      if (!(await ping(db))) throw new AppError('unavailable', 'The database does not answer.', { headers: { 'retry-after': '5' } });
      if (!migrated) {
        const pending = await pendingMigrations(db).catch(() => ['unknown']);
        if (pending.length > 0)
          throw new AppError('unavailable', 'Database migrations are not applied.', { headers: { 'retry-after': '5' } });
        migrated = true;
      }
      return { status: 'ready' };
    },
  );

  typed.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format)',
        operationId: 'getMetrics',
        security: [],
        response: {
          200: {
            description: 'Every metric, in the Prometheus text format',
            content: { 'text/plain': { schema: Type.String(), example: METRICS_EXAMPLE } },
          },
          ...errorResponses(),
        },
      },
    },
    async (_request, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );

  // Cache-Control and ETag come from the public caching policies (src/http/caching.ts).
  typed.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
