// GET /v1/stats: the admin dashboard's aggregate numbers, in one request.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { errorResponses, jsonResponse } from '../../http/schemas.js';
import { STATS_DAYS, type StatsService } from './stats.service.js';

const Count = Type.Integer({ minimum: 0 });

const StatsSchema = Type.Object(
  {
    users: Type.Object({
      total: Count,
      active: Count,
      disabled: Count,
      signed_in_24h: Type.Integer({ minimum: 0, description: 'Users whose last sign-in is within the last 24 hours' }),
      signed_in_7d: Type.Integer({ minimum: 0, description: 'Users whose last sign-in is within the last 7 days' }),
      never_signed_in: Count,
    }),
    sign_ins_per_day: Type.Array(
      Type.Object({
        date: Type.String({ format: 'date', description: 'A UTC day' }),
        succeeded: Count,
        failed: Type.Integer({ minimum: 0, description: 'Failed password checks, unknown usernames included' }),
      }),
      {
        minItems: STATS_DAYS,
        maxItems: STATS_DAYS,
        description: `The last ${STATS_DAYS} UTC days, oldest first, today last; days without sign-ins are zero`,
      },
    ),
  },
  { additionalProperties: false },
);

/** A month of made-up but plausible figures, ending on the README's example day. */
const STATS_EXAMPLE = {
  users: { total: 1250, active: 1200, disabled: 50, signed_in_24h: 310, signed_in_7d: 840, never_signed_in: 95 },
  sign_ins_per_day: Array.from({ length: STATS_DAYS }, (_, i) => ({
    date: new Date(Date.UTC(2026, 10, 28) - (STATS_DAYS - 1 - i) * 86_400_000).toISOString().slice(0, 10),
    succeeded: 280 + ((i * 37) % 120),
    failed: (i * 7) % 13,
  })),
};

export function registerStatsRoutes(app: FastifyInstance, stats: StatsService): void {
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/v1/stats',
    {
      // Counts over many rows that may lag a little: a replica's work when there is one.
      config: { auth: 'admin', reads: 'replica' },
      schema: {
        tags: ['stats'],
        summary: `User counts and sign-ins per UTC day over the last ${STATS_DAYS} days (admin)`,
        operationId: 'getStats',
        security: [{ basic: [] }, { bearer: [] }],
        response: {
          200: jsonResponse('The counts, computed when asked', StatsSchema, STATS_EXAMPLE),
          ...errorResponses('unauthorized', 'forbidden'),
        },
      },
    },
    async () => stats.summary(),
  );
}
