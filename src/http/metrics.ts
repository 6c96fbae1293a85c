// Prometheus metrics (prom-client), one registry per app so that several apps in one process (the
// tests) never collide. Request durations by route pattern and status; hash durations by operation.
import type { FastifyInstance, onResponseHookHandler } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { asArray } from '../lib/arrays.js';
import type { HashOperation } from '../modules/sessions/passwords.js';

export interface Metrics {
  registry: Registry;
  observeHash(operation: HashOperation, seconds: number): void;
  /** One password verification finished (the throttling tests count these). */
  countVerification(result: 'match' | 'mismatch' | 'dummy'): void;
  countHashRejection(): void;
  countThrottled(reason: 'blocked' | 'slowed'): void;
  countPublished(count: number): void;
  countPublishFailure(): void;
  /** Reports the outbox lag (pending count, oldest pending age) as gauges, read at scrape time. */
  watchOutbox(stats: () => Promise<{ count: number; oldest: string | Date | null }>): void;
  /** Reports the hashing pool's queue as gauges, read at scrape time. */
  watchHashPool(pool: { readonly active: number; readonly queued: number }): void;
  /** A replica-eligible query went to this target (`primary` or a replica's name). */
  countRead(target: string): void;
  /** Reports each replica's lag and whether it receives reads, read at scrape time. */
  watchReplicas(states: () => { name: string; up: boolean; lagSeconds: number }[]): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_process_' });
  const hashDuration = new Histogram({
    name: 'gatehouse_password_hash_duration_seconds',
    help: 'Time from handing one password hash or verify to the thread pool to its end (argon2id).',
    labelNames: ['operation'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const verifications = new Counter({
    name: 'gatehouse_password_verifications_total',
    help: 'Password verifications, by result (dummy: an unknown username, verified against a dummy hash).',
    labelNames: ['result'],
    registers: [registry],
  });
  const hashRejections = new Counter({
    name: 'gatehouse_password_hash_rejections_total',
    help: 'Requests answered 503 overloaded because the hashing queue was full.',
    registers: [registry],
  });
  const throttled = new Counter({
    name: 'gatehouse_signin_throttled_total',
    help: 'Sign-in attempts throttled: blocked (429, no password verified) or slowed (verified after a wait).',
    labelNames: ['reason'],
    registers: [registry],
  });
  const published = new Counter({
    name: 'gatehouse_events_published_total',
    help: 'Events published to the broker and confirmed by it.',
    registers: [registry],
  });
  const publishFailures = new Counter({
    name: 'gatehouse_events_publish_failures_total',
    help: 'Relay batches that failed (broker unreachable, or a publish not confirmed); they are retried.',
    registers: [registry],
  });
  const reads = new Counter({
    name: 'gatehouse_db_reads_total',
    help: 'Queries of requests that may read from a replica, by the server that answered them (primary or replica-N).',
    labelNames: ['target'],
    registers: [registry],
  });
  return {
    registry,
    countRead: (target) => reads.inc({ target }),
    watchReplicas(states) {
      new Gauge({
        name: 'gatehouse_db_replica_lag_seconds',
        help: 'How long ago the primary had changes this replica has not replayed yet (+Inf when it does not answer).',
        labelNames: ['replica'],
        registers: [registry],
        collect() {
          for (const state of states()) this.set({ replica: state.name }, state.lagSeconds);
        },
      });
      new Gauge({
        name: 'gatehouse_db_replica_up',
        help: '1 when the replica receives reads (answers, and lags at most DATABASE_REPLICA_MAX_LAG_SECONDS).',
        labelNames: ['replica'],
        registers: [registry],
        collect() {
          for (const state of states()) this.set({ replica: state.name }, state.up ? 1 : 0);
        },
      });
    },
    countPublished: (count) => published.inc(count),
    countPublishFailure: () => publishFailures.inc(),
    watchOutbox(stats) {
      // One query serves both gauges: a scrape starts every collect at once, in registration
      // order, so the count's collect starts the query and the age's collect awaits the same one
      // (reading a value the count's collect had not written yet showed the previous scrape's age).
      let latest: Promise<{ count: number; oldestAgeSeconds: number }> = Promise.resolve({ count: 0, oldestAgeSeconds: 0 });
      new Gauge({
        name: 'gatehouse_outbox_pending_events',
        help: 'Events recorded but not yet confirmed by the broker.',
        registers: [registry],
        async collect() {
          latest = stats().then(
            ({ count, oldest }) => ({
              count,
              oldestAgeSeconds: oldest === null ? 0 : Math.max(0, (Date.now() - new Date(oldest).getTime()) / 1000),
            }),
            () => ({ count: Number.NaN, oldestAgeSeconds: 0 }),
          );
          this.set((await latest).count);
        },
      });
      new Gauge({
        name: 'gatehouse_outbox_oldest_pending_age_seconds',
        help: 'Age of the oldest event not yet confirmed by the broker (0 when none).',
        registers: [registry],
        async collect() {
          this.set((await latest).oldestAgeSeconds);
        },
      });
    },
    observeHash: (operation, seconds) => hashDuration.observe({ operation }, seconds),
    countVerification: (result) => verifications.inc({ result }),
    countHashRejection: () => hashRejections.inc(),
    countThrottled: (reason) => throttled.inc({ reason }),
    watchHashPool(pool) {
      new Gauge({
        name: 'gatehouse_password_hash_queue_depth',
        help: 'Password hashes waiting for a free slot.',
        registers: [registry],
        collect() {
          this.set(pool.queued);
        },
      });
      new Gauge({
        name: 'gatehouse_password_hash_active',
        help: 'Password hashes handed to the thread pool now: being computed, or next for a thread (at most one more than the hashes at once).',
        registers: [registry],
        collect() {
          this.set(pool.active);
        },
      });
    },
  };
}

const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

type RequestLabels = { method: string; route: string; status: string };

interface RequestSeries {
  labels: RequestLabels;
  /** Observations per bucket (not cumulative); the last slot holds those above every bound. */
  counts: number[];
  sum: number;
  count: number;
}

type MetricValue = { labels: Record<string, string | number>; value: number; metricName: string };

/**
 * gatehouse_http_request_duration_seconds, kept here instead of in prom-client's Histogram, whose
 * observe builds and interns a string of the labels on every call. With reading the route's pattern
 * from request.routeOptions (a new object per read in Fastify 5), that cost about 0.77 µs a request
 * in a loop on a 2-core bench machine; a route's own hook here costs 0.03 µs. Each route's hook finds
 * its series by method and status code (a Map lookup each); the registry reads the series at scrape
 * time through get(), the shape prom-client's own metrics give it, so the exposition is the same as
 * a Histogram's (test/request-metrics.test.ts compares the two).
 */
export class RequestDurations {
  readonly name = 'gatehouse_http_request_duration_seconds';
  readonly help = 'HTTP request duration by method, route pattern and status code.';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly all: RequestSeries[] = [];

  /** Registers itself, as prom-client's metrics do given `registers`: the registry needs only get() and reset(). */
  constructor(registry: Registry) {
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The observer of one route pattern's requests (`unmatched` for requests no route matched). */
  forRoute(route: string): (method: string, status: number, seconds: number) => void {
    const byMethod = new Map<string, Map<number, RequestSeries>>();
    return (method, status, seconds) => {
      let byStatus = byMethod.get(method);
      if (!byStatus) {
        byStatus = new Map();
        byMethod.set(method, byStatus);
      }
      let series = byStatus.get(status);
      if (!series) {
        series = {
          labels: { method, route, status: String(status) },
          counts: new Array(REQUEST_BUCKETS.length + 1).fill(0),
          sum: 0,
          count: 0,
        };
        byStatus.set(status, series);
        this.all.push(series);
      }
      let bucket = 0;
      for (const bound of REQUEST_BUCKETS) {
        if (seconds <= bound) break;
        bucket += 1;
      }
      series.counts[bucket] = (series.counts[bucket] ?? 0) + 1;
      series.sum += seconds;
      series.count += 1;
    };
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    for (const { labels, counts, sum, count } of this.all) {
      let cumulative = 0;
      REQUEST_BUCKETS.forEach((bound, index) => {
        cumulative += counts[index] ?? 0;
        values.push({ labels: { le: bound, ...labels }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', ...labels }, value: count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...labels }, value: sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...labels }, value: count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /**
   * Zeroes every series (registry.resetMetrics). Unlike a Histogram, which drops its series, they
   * stay listed at zero: the route hooks hold them.
   */
  reset(): void {
    for (const series of this.all) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }
}

export function registerRequestMetrics(app: FastifyInstance, metrics: Metrics): void {
  const durations = new RequestDurations(metrics.registry);
  // Callback-style hooks (they never wait): an async hook would cost every response a promise.
  // One per route, added in onRoute, so that no request reads its route's options; the global one
  // counts only what no route matched (the not-found handler has no route hooks).
  app.addHook('onRoute', (route) => {
    const observe = durations.forRoute(route.url);
    const hook: onResponseHookHandler = (request, reply, done) => {
      observe(request.method, reply.statusCode, reply.elapsedTime / 1000);
      done();
    };
    route.onResponse = [...asArray(route.onResponse), hook];
  });
  const unmatched = durations.forRoute('unmatched');
  app.addHook('onResponse', (request, reply, done) => {
    if (request.is404) unmatched(request.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}
