// The hardened HTTP surface (ASVS 4.0.3 14.4, 5.0 3.4; OWASP API8): security headers on every
// response, errors included; CORS from an allow-list only; a JSON nesting limit.
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { type CachePolicy, cachedPayload } from './caching.js';
import { AppError } from './errors.js';

/** For JSON API responses: nothing may load, nothing may frame them. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * Every response's own headers in one hook: its request id, the public caching headers where a
 * policy matches (caching.ts), and the security headers. One `onSend` hook instead of an
 * `onRequest` and two `onSend` hooks: each hook is a step of Fastify's hook runner for every
 * request (bench/RESULTS.md, seventh round). Nothing hijacks a reply, so every response that an
 * `onRequest` hook saw passes here.
 */
export function registerResponseHeaders(app: FastifyInstance, cachePolicies: CachePolicy[]): void {
  // Callback-style (it never waits): an async hook would cost every response a promise.
  app.addHook('onSend', (request, reply, sent, done) => {
    reply.header('x-request-id', request.id);
    // Before the security headers, which make anything without a Cache-Control `no-store`.
    const payload = cachedPayload(cachePolicies, request, reply, sent);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('cross-origin-resource-policy', 'same-origin');
    // Pages (the docs) set their own policy; everything else is an API response.
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', API_CSP);
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    reply.removeHeader('x-powered-by');
    done(null, payload);
  });
}

/**
 * CORS for browsers on the listed origins only (exact match). An Origin that is not listed,
 * including `null`, gets no CORS headers at all: it is never reflected.
 */
export async function registerCors(app: FastifyInstance, allowedOrigins: readonly string[]): Promise<void> {
  if (allowedOrigins.length === 0) return;
  const allowed = new Set(allowedOrigins);
  await app.register(cors, {
    origin: (origin, callback) => callback(null, origin !== undefined && origin !== 'null' && allowed.has(origin)),
    methods: ['GET', 'POST', 'PATCH', 'PUT', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'x-request-id', 'idempotency-key', 'gatehouse-consistency'],
    exposedHeaders: ['x-request-id', 'location', 'retry-after', 'gatehouse-consistency', 'idempotent-replayed'],
    credentials: false,
    maxAge: 600,
  });
}

/** Depth of the deepest array/object nesting in a JSON text, counted without parsing it. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > deepest) deepest = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}

/** Replaces the JSON parser with one that refuses nesting deeper than maxDepth (400). */
export function registerJsonParser(app: FastifyInstance, maxDepth: number): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(['application/json', 'application/problem+json'], { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (jsonDepth(text) > maxDepth) {
      done(AppError.invalid([{ field: 'body', message: `nests deeper than ${maxDepth} levels` }]), undefined);
      return;
    }
    parse(request, text, done);
  });
}
