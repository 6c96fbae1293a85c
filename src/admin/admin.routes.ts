// The admin console at /admin: static files read once at start-up and served under a strict CSP
// (no inline script or style), with strong ETags so that a revalidation costs a 304 and no body.
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { matchesEtag, strongEtag } from '../http/caching.js';
import { AppError } from '../http/errors.js';

/** The page may load its own scripts, styles and images and call the API on its own origin; nothing else. */
export const ADMIN_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const ASSETS_DIR = fileURLToPath(new URL('./assets/', import.meta.url));
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};
// Assets may be an hour old; the page itself is revalidated on every load, so a new release is
// picked up at the latest an hour after it ships.
const ASSET_CACHE = 'public, max-age=3600';
const PAGE_CACHE = 'no-cache';

interface StaticFile {
  body: Buffer;
  contentType: string;
  etag: string;
}

function loadFile(path: string): StaticFile {
  const body = readFileSync(path);
  const contentType = CONTENT_TYPES[extname(path)];
  if (!contentType) throw new Error(`no content type for admin asset ${path}`);
  return { body, contentType, etag: strongEtag(body) };
}

function sendFile(request: FastifyRequest, reply: FastifyReply, file: StaticFile, cacheControl: string): FastifyReply {
  reply.header('content-security-policy', ADMIN_CSP).header('cache-control', cacheControl).header('etag', file.etag);
  if (matchesEtag(request.headers['if-none-match'], file.etag)) return reply.code(304).send();
  return reply.type(file.contentType).send(file.body);
}

export function registerAdminRoutes(app: FastifyInstance, assetsDir = ASSETS_DIR): void {
  const page = loadFile(join(assetsDir, 'index.html'));
  const assets = new Map<string, StaticFile>();
  for (const name of readdirSync(assetsDir)) {
    if (name !== 'index.html') assets.set(name, loadFile(join(assetsDir, name)));
  }

  // Not part of the API: kept out of the OpenAPI document.
  const pageRoute = { schema: { hide: true }, config: { auth: 'none' as const } };
  app.get('/admin', pageRoute, async (request, reply) => sendFile(request, reply, page, PAGE_CACHE));
  app.get('/admin/', pageRoute, async (request, reply) => sendFile(request, reply, page, PAGE_CACHE));
  app.get(
    '/admin/assets/:name',
    { ...pageRoute, schema: { hide: true, params: Type.Object({ name: Type.String({ maxLength: 100 }) }) } },
    async (request, reply) => {
      const file = assets.get((request.params as { name: string }).name);
      if (!file) throw AppError.notFound('The file');
      return sendFile(request, reply, file, ASSET_CACHE);
    },
  );
}
