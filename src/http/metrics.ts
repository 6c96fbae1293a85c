// Prometheus metrics (prom-client), one registry per app so that several apps in one process (the
// tests) never collide. Request durations by route pattern and status; hash durations by operation.
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { HashOperation } from '../modules/sessions/passwords.js';

export interface Metrics {
  registry: Registry;
  observeHash(operation: HashOperation, seconds: number): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_process_' });
  const hashDuration = new Histogram({
    name: 'gatehouse_password_hash_duration_seconds',
    help: 'Time spent hashing or verifying one password with argon2id.',
    labelNames: ['operation'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return {
    registry,
    observeHash: (operation, seconds) => hashDuration.observe({ operation }, seconds),
  };
}

export function registerRequestMetrics(app: FastifyInstance, metrics: Metrics): void {
  const requestDuration = new Histogram({
    name: 'gatehouse_http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [metrics.registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    requestDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
}
