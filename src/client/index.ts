// gatehouse/client: a typed HTTP client for gatehouse, openapi-fetch over the types generated from
// the app's own OpenAPI document (scripts/generate-client.ts; `npm run client:generate`). Thin on
// purpose: every path, parameter, body and response is typed by schema.d.ts, nothing is hand-written.
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema.js';

export type { components, paths };
export type GatehouseClient = Client<paths>;
export type User = components['schemas']['User'];
/** RFC 9457 problem details, as every gatehouse error is sent; switch on `code`. */
export type Problem = components['schemas']['Problem'];
export type ProblemCode = Problem['code'];
/** A failed call's problem, or a stand-in for a response that is not gatehouse's (a proxy's error page). */
export type ClientProblem = Problem | (Omit<Problem, 'code'> & { code: 'unexpected_response' });

export interface GatehouseClientOptions {
  /** Where gatehouse answers, e.g. `https://auth.example.com` (no trailing path). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …`; a function is asked before every request, so a refreshed token is picked up. */
  accessToken?: string | (() => string | undefined | Promise<string | undefined>);
  fetch?: (request: Request) => Promise<Response>;
}

export function createGatehouseClient(options: GatehouseClientOptions): GatehouseClient {
  const client = createClient<paths>({ baseUrl: options.baseUrl, ...(options.fetch ? { fetch: options.fetch } : {}) });
  const { accessToken } = options;
  if (accessToken !== undefined) {
    const bearer: Middleware = {
      async onRequest({ request }) {
        // A header given for one call (Basic credentials to sign in) wins over the token.
        if (request.headers.has('authorization')) return request;
        const token = typeof accessToken === 'function' ? await accessToken() : accessToken;
        if (token) request.headers.set('authorization', `Bearer ${token}`);
        return request;
      },
    };
    client.use(bearer);
  }
  return client;
}

function isProblem(body: unknown): body is Problem {
  const candidate = body as Partial<Problem> | null;
  return typeof candidate === 'object' && candidate !== null && typeof candidate.code === 'string' && typeof candidate.status === 'number';
}

/**
 * The problem of a failed call (`const result = await client.POST(…); const problem = problemOf(result)`),
 * or undefined when it succeeded.
 */
export function problemOf(result: { error?: unknown; response: Response }): ClientProblem | undefined {
  const { error, response } = result;
  if (response.ok) return undefined;
  if (isProblem(error)) return error;
  return {
    type: 'about:blank',
    title: response.statusText || 'Unexpected response',
    status: response.status,
    code: 'unexpected_response',
    detail: typeof error === 'string' ? error.slice(0, 200) : `HTTP ${response.status} without a problem body`,
    request_id: response.headers.get('x-request-id') ?? '',
  };
}
