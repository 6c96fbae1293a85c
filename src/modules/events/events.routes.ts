// GET /v1/events: the polling feed of recorded events, oldest first, for admins. It works with or
// without a broker, so the embedded default has events too.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../../http/errors.js';
import { errorResponses, jsonResponse } from '../../http/schemas.js';
import { USER_EXAMPLE } from '../users/users.schemas.js';
import { EVENT_TYPES, toCloudEvent } from './events.js';
import type { EventsRepository } from './events.repository.js';

const CLOUD_EVENT_EXAMPLE = {
  specversion: '1.0',
  id: '019acb3e-9f10-7d2b-8c1a-3e5f7a9b1c2d',
  source: '/gatehouse',
  type: 'user.created',
  subject: '019acb3e-8d2a-7c41-9a35-2f6f2b1e4d10',
  time: '2026-11-28T04:10:00.123Z',
  datacontenttype: 'application/json',
  data: { user: USER_EXAMPLE },
};

const CloudEventSchema = Type.Object(
  {
    specversion: Type.Literal('1.0'),
    id: Type.String(),
    source: Type.String(),
    type: Type.Union(EVENT_TYPES.map((type) => Type.Literal(type))),
    subject: Type.String({ description: 'The user id' }),
    time: Type.String({ format: 'date-time' }),
    datacontenttype: Type.Literal('application/json'),
    data: Type.Object({}, { additionalProperties: true }),
  },
  {
    $id: 'CloudEvent',
    examples: [CLOUD_EVENT_EXAMPLE],
  },
);

const EventPage = Type.Object({
  items: Type.Array(Type.Ref('CloudEvent')),
  next_after: Type.Union([Type.String(), Type.Null()], {
    description: 'Pass as `after` to read on: the last item, or the given `after` when nothing is new',
  }),
});
const EVENT_PAGE_EXAMPLE = { items: [CLOUD_EVENT_EXAMPLE], next_after: '019acb3e-9f10-7d2b-8c1a-3e5f7a9b1c2d' };

export function registerEventsRoutes(app: FastifyInstance, events: EventsRepository, source: string): void {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  app.addSchema(CloudEventSchema);

  typed.get(
    '/v1/events',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['events'],
        summary: 'Recorded events after a given event id, oldest first (admin)',
        operationId: 'listEvents',
        security: [{ basic: [] }, { bearer: [] }],
        querystring: Type.Object(
          {
            after: Type.Optional(
              Type.String({ minLength: 1, maxLength: 64, description: 'An event id; omit to start at the oldest kept event' }),
            ),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: jsonResponse('Events after `after`, oldest first', EventPage, EVENT_PAGE_EXAMPLE),
          ...errorResponses('invalid_request', 'unauthorized', 'forbidden'),
        },
      },
    },
    async (request) => {
      const rows = await events.listAfter(request.query.after ?? null, request.query.limit);
      if (!rows) {
        throw AppError.invalid([{ field: 'after', message: 'is not the id of a kept event (it may have been pruned; start without it)' }]);
      }
      const items = rows.map((row) => toCloudEvent(row, source));
      return { items, next_after: items.at(-1)?.id ?? request.query.after ?? null };
    },
  );
}
