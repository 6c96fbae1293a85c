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
import { errorResponses } from '../../http/schemas.js';

const Status = Type.Object({ status: Type.String() });

export function registerOpsRoutes(app: FastifyInstance, db: Kysely<Database>, metrics: Metrics): void {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  let migrated = false;

  typed.get(
    '/healthz',
    { schema: { tags: ['operations'], summary: 'Liveness: 200 while the process serves', response: { 200: Status } } },
    async () => ({ status: 'ok' }),
  );

  typed.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: 200 when the database answers and migrations are applied',
        response: { 200: Status, ...errorResponses('unavailable') },
      },
    },
    async () => {
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
    { schema: { tags: ['operations'], summary: 'Prometheus metrics (text exposition format)', produces: ['text/plain'] } },
    async (_request, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );

  typed.get('/openapi.json', { schema: { hide: true } }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return app.swagger();
  });
}
