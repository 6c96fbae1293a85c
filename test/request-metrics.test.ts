// The request-duration histogram that gatehouse keeps itself (src/http/metrics.ts): its exposition
// must be what a prom-client Histogram with the same name, labels and buckets would print.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { RequestDurations } from '../src/http/metrics.js';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const OBSERVED: [route: string, method: string, status: number, seconds: number][] = [
  ['/v1/users/:id', 'GET', 200, 0.0004],
  ['/v1/users/:id', 'GET', 200, 0.001],
  ['/v1/users/:id', 'GET', 200, 0.0031],
  ['/v1/users/:id', 'GET', 404, 0.02],
  ['/v1/users/:id', 'HEAD', 200, 7],
  ['/v1/sessions', 'POST', 201, 0.3],
  ['unmatched', 'GET', 404, 0],
];

async function exposition(fill: (registry: Registry) => void): Promise<string> {
  const registry = new Registry();
  fill(registry);
  return registry.metrics();
}

describe('request duration metrics', () => {
  test('print the same exposition as a prom-client Histogram given the same observations', async () => {
    const ours = await exposition((registry) => {
      const durations = new RequestDurations(registry);
      const byRoute = new Map<string, ReturnType<RequestDurations['forRoute']>>();
      for (const [route, method, status, seconds] of OBSERVED) {
        if (!byRoute.has(route)) byRoute.set(route, durations.forRoute(route));
        byRoute.get(route)?.(method, status, seconds);
      }
    });
    const reference = await exposition((registry) => {
      const histogram = new Histogram({
        name: 'gatehouse_http_request_duration_seconds',
        help: 'HTTP request duration by method, route pattern and status code.',
        labelNames: ['method', 'route', 'status'],
        buckets: BUCKETS,
        registers: [registry],
      });
      for (const [route, method, status, seconds] of OBSERVED) histogram.observe({ method, route, status: String(status) }, seconds);
    });
    assert.equal(ours, reference);
    assert.match(ours, /_bucket\{le="0.001",method="GET",route="\/v1\/users\/:id",status="200"\} 2\n/);
    assert.match(ours, /_bucket\{le="5",method="HEAD",route="\/v1\/users\/:id",status="200"\} 0\n/);
    assert.match(ours, /_count\{method="HEAD",route="\/v1\/users\/:id",status="200"\} 1\n/);
  });

  test('reset zeroes every series and keeps counting after it', async () => {
    const registry = new Registry();
    const durations = new RequestDurations(registry);
    const observe = durations.forRoute('/healthz');
    observe('GET', 200, 0.002);
    registry.resetMetrics();
    assert.match(await registry.metrics(), /_count\{method="GET",route="\/healthz",status="200"\} 0\n/);
    observe('GET', 200, 0.002);
    const text = await registry.metrics();
    assert.match(text, /_bucket\{le="0.001",method="GET",route="\/healthz",status="200"\} 0\n/);
    assert.match(text, /_bucket\{le="0.0025",method="GET",route="\/healthz",status="200"\} 1\n/);
    assert.match(text, /_sum\{method="GET",route="\/healthz",status="200"\} 0.002\n/);
  });
});
