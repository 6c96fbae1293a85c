// One autocannon run, bounded in time and connections, summarised as the figures the report needs.
import autocannon from 'autocannon';

export interface LoadOptions {
  url: string;
  durationSeconds: number;
  connections: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Makes each request's body (unique usernames); overrides `body`. */
  makeBody?: () => string;
}

export interface LoadFigures {
  requestsPerSecond: number;
  successesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCounts: Record<string, number>;
  durationSeconds: number;
}

export async function runLoad(options: LoadOptions): Promise<LoadFigures> {
  const makeBody = options.makeBody;
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSeconds,
    timeout: 30,
    method: options.method ?? 'GET',
    headers: options.headers ?? {},
    ...(options.body !== undefined ? { body: options.body } : {}),
    ...(makeBody ? { requests: [{ setupRequest: (request) => ({ ...request, body: makeBody() }) }] } : {}),
  });
  const statusCounts: Record<string, number> = {};
  for (const [status, stat] of Object.entries(result.statusCodeStats ?? {})) statusCounts[status] = stat.count ?? 0;
  const duration = result.duration > 0 ? result.duration : options.durationSeconds;
  const completed = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
  return {
    requestsPerSecond: completed / duration,
    successesPerSecond: result['2xx'] / duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCounts,
    durationSeconds: duration,
  };
}
