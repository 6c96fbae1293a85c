// Reads GET /metrics (Prometheus text exposition format) so that a test can check what the service
// did behind an answer: how many passwords it verified, how many sign-ins it throttled or shed.
import type { FastifyInstance } from 'fastify';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricsSnapshot {
  /** Sum of the samples of `name` whose labels include `labels`; undefined when there is none. */
  find(name: string, labels?: Record<string, string>): number | undefined;
  /** As find(), but 0 when absent: a labelled counter shows no sample until it is first counted. */
  value(name: string, labels?: Record<string, string>): number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): MetricsSnapshot {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(LABEL)) labels[key as string] = value as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  const find = (name: string, labels: Record<string, string> = {}) => {
    const matching = samples.filter(
      (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    );
    return matching.length === 0 ? undefined : matching.reduce((total, sample) => total + sample.value, 0);
  };
  return { find, value: (name, labels) => find(name, labels) ?? 0 };
}

/** Scrapes /metrics from an address of its own, so the scrape never uses a client's rate budget. */
export async function readMetrics(app: FastifyInstance): Promise<MetricsSnapshot> {
  const response = await app.inject({ url: '/metrics', remoteAddress: '192.0.2.250' });
  if (response.statusCode !== 200) throw new Error(`GET /metrics answered ${response.statusCode}: ${response.body}`);
  return parseMetrics(response.body);
}

/** Every password verification the service ran, whatever its result (match, mismatch, dummy). */
export async function passwordVerifications(app: FastifyInstance): Promise<number> {
  return (await readMetrics(app)).value('gatehouse_password_verifications_total');
}
