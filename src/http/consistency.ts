// Read-your-writes with read replicas. After a successful write, the response carries the
// primary's WAL position as the `Gatehouse-Consistency` header, and the position is remembered
// for the caller (in Redis when configured, so every instance knows it). A route marked
// `config.reads: 'replica'` then reads from a replica only if that replica has replayed the newest
// of: the position the client sends back in `Gatehouse-Consistency`, and the caller's remembered
// one; otherwise from the primary. Without replicas none of this is registered.
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { formatLsn, type Lsn, parseLsn, type ReplicaRouter, readsFromReplica } from '../db/replicas.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** 'replica': the handler only reads, and may read from a replica that has the caller's writes. */
    reads?: 'replica';
  }
  interface FastifyRequest {
    /** Whose writes a write request made, when it is not the authenticated caller (a sign-in). */
    consistencySubject: string | null;
  }
}

export const CONSISTENCY_HEADER = 'gatehouse-consistency';
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface ConsistencyOptions {
  replicas: ReplicaRouter;
  redis: Redis | null;
  keyPrefix: string;
  maxLagSeconds: number;
  logger: Logger;
}

/** Remembers each caller's newest write position: shared through Redis, or in this process. */
function createWriteMemory(options: ConsistencyOptions) {
  // A replica that receives reads has replayed everything the primary had maxLag seconds ago (give
  // or take a poll), so a position older than that needs no remembering.
  const ttlMs = (options.maxLagSeconds + 10) * 1000;
  const local = new Map<string, { lsn: Lsn; expires: number }>();
  const key = (subject: string) => `${options.keyPrefix}rw:${subject}`;
  return {
    async remember(subject: string, lsn: Lsn): Promise<void> {
      if (options.redis) {
        await options.redis.set(key(subject), formatLsn(lsn), 'PX', ttlMs);
        return;
      }
      if (local.size > 100_000) local.clear();
      local.set(subject, { lsn, expires: Date.now() + ttlMs });
    },
    /** The remembered position; throws when it cannot be known (Redis away). */
    async recall(subject: string): Promise<Lsn | null> {
      if (options.redis) return parseLsn(await options.redis.get(key(subject)));
      const entry = local.get(subject);
      if (!entry) return null;
      if (entry.expires < Date.now()) {
        local.delete(subject);
        return null;
      }
      return entry.lsn;
    },
  };
}

function newest(a: Lsn | null, b: Lsn | null): Lsn | null {
  if (a === null) return b;
  if (b === null) return a;
  return a > b ? a : b;
}

export function registerReadConsistency(app: FastifyInstance, options: ConsistencyOptions | null): void {
  app.decorateRequest('consistencySubject', null);
  if (!options) return;
  const memory = createWriteMemory(options);

  app.addHook('onRoute', (route) => {
    if (route.config?.reads !== 'replica') return;
    const original = route.handler as RouteHandlerMethod;
    // A handler that sent its reply itself and returned nothing (a sync handler answering from a
    // cache) is waited for through the reply: Fastify asks an async handler that calls reply.send
    // to return the reply, since resolving with nothing before the reply has gone out (an async
    // onSend hook still running) would make it send a second, empty one.
    const handler = async function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      const result = await original.call(this, request, reply);
      return result === undefined ? reply : result;
    };
    route.handler = async function replicaRead(this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      const sent = request.headers[CONSISTENCY_HEADER];
      let minimum = parseLsn(typeof sent === 'string' ? sent : null);
      const subject = request.caller?.user.id;
      if (subject) {
        try {
          minimum = newest(minimum, await memory.recall(subject));
        } catch {
          // The caller's writes cannot be known: read from the primary, which has them all.
          return handler.call(this, request, reply);
        }
      }
      return readsFromReplica(minimum, () => handler.call(this, request, reply));
    };
  });

  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode >= 400 || (!WRITE_METHODS.has(request.method) && !request.consistencySubject)) return payload;
    let lsn: Lsn | null = null;
    try {
      lsn = await options.replicas.primaryLsn();
    } catch {
      // The write has committed; without the position, later reads just may lag by up to the threshold.
      return payload;
    }
    if (lsn === null) return payload;
    reply.header(CONSISTENCY_HEADER, formatLsn(lsn));
    const subject = request.consistencySubject ?? request.caller?.user.id;
    if (subject) {
      await memory.remember(subject, lsn).catch((error) => options.logger.warn({ err: error }, 'could not remember a write position'));
    }
    return payload;
  });
}
