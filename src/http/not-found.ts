// Unknown paths answer 404 not_found; a known path with the wrong method answers 405
// method_not_allowed with an Allow header (RFC 9110 §15.5.6). Fastify alone answers 404 for both,
// so the routes are recorded as they are registered and matched here.
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import { asArray } from '../lib/arrays.js';
import { AppError, sendProblem } from './errors.js';

interface RoutePattern {
  pattern: RegExp;
  methods: Set<string>;
}

function toPattern(url: string): RegExp {
  const escaped = url
    .split('/')
    .map((part) => (part.startsWith(':') ? '[^/]+' : part === '*' ? '.*' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${escaped}/?$`);
}

/** Call before any route is registered; `rateLimit`, when given, limits unknown paths too. */
export function registerNotFound(app: FastifyInstance, rateLimit: preHandlerHookHandler | null): void {
  const routes = new Map<string, RoutePattern>();
  app.addHook('onRoute', (route) => {
    const methods = asArray(route.method);
    const entry = routes.get(route.url) ?? { pattern: toPattern(route.url), methods: new Set<string>() };
    for (const method of methods) entry.methods.add(method.toUpperCase());
    routes.set(route.url, entry);
  });

  app.setNotFoundHandler(rateLimit ? { preHandler: rateLimit } : {}, (request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = new Set<string>();
    for (const route of routes.values()) {
      if (route.pattern.test(path)) for (const method of route.methods) allowed.add(method);
    }
    if (allowed.size > 0) {
      const allow = [...allowed].sort().join(', ');
      return sendProblem(
        reply,
        new AppError('method_not_allowed', `${request.method} is not allowed here; use ${allow}.`, { headers: { allow } }),
      );
    }
    return sendProblem(reply, new AppError('not_found', 'No endpoint has this path.'));
  });
}
