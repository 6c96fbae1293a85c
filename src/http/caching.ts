// What a CDN or the edge proxy may cache: the public documents (JWKS, the OpenAPI document, the
// docs page and its assets) get `Cache-Control: public` and a strong ETag, and a matching
// If-None-Match gets 304 without a body. Everything else is an API response and stays `no-store`
// (set in security.ts). The admin console's assets set their own headers.
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface CachePolicy {
  matches(path: string): boolean;
  cacheControl: string;
}

export function publicCachePolicies(jwksMaxAgeSeconds: number): CachePolicy[] {
  return [
    // A rotated-in key is published GATEHOUSE_SIGNING_KEY_ACTIVATION_SECONDS before it signs; the
    // caches on the way (an edge cache, then the verifier's own, which sees no Age header from
    // nginx) must not keep the old set that long together, or verifiers meet a kid they lack. The
    // caller passes a third of the delay: two caches in a row still leave a third to spare.
    { matches: (path) => path === '/.well-known/jwks.json', cacheControl: `public, max-age=${jwksMaxAgeSeconds}` },
    { matches: (path) => path === '/openapi.json' || path === '/docs/json' || path === '/docs/yaml', cacheControl: 'public, max-age=300' },
    // The page itself is revalidated each time (cheap with the ETag); its assets change only with a release.
    { matches: (path) => path === '/docs' || path === '/docs/', cacheControl: 'public, no-cache' },
    { matches: (path) => path.startsWith('/docs/'), cacheControl: 'public, max-age=3600' },
  ];
}

export function strongEtag(body: string | Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`;
}

/** True when If-None-Match lists this ETag (or is `*`), compared weakly as RFC 9110 13.1.2 says. */
export function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  const bare = etag.replace(/^W\//, '');
  return ifNoneMatch.split(',').some((candidate) => {
    const value = candidate.trim();
    return value === '*' || value.replace(/^W\//, '') === bare;
  });
}

function pathOf(request: FastifyRequest): string {
  const query = request.url.indexOf('?');
  return query === -1 ? request.url : request.url.slice(0, query);
}

/**
 * The payload to send: unchanged, or empty for a 304; sets the public caching headers. Called by
 * the response headers' hook (security.ts) before it makes anything without a Cache-Control
 * `no-store`.
 */
export function cachedPayload(policies: CachePolicy[], request: FastifyRequest, reply: FastifyReply, payload: unknown): unknown {
  if (request.method !== 'GET' && request.method !== 'HEAD') return payload;
  if (reply.statusCode !== 200) return payload;
  const path = pathOf(request);
  const policy = policies.find((candidate) => candidate.matches(path));
  if (!policy) return payload;
  reply.header('cache-control', policy.cacheControl);
  // Files streamed by the docs plugin come with their own ETag and conditional handling.
  if (typeof payload !== 'string' && !Buffer.isBuffer(payload)) return payload;
  const etag = strongEtag(payload);
  reply.header('etag', etag);
  if (!matchesEtag(request.headers['if-none-match'], etag)) return payload;
  reply.code(304);
  reply.removeHeader('content-length');
  return '';
}
