// A small load generator for the fault tests: concurrent loops of requests through nginx for a
// fixed time, as a careful client sends them. Reads are sent once (nginx retries them); user
// creations carry an Idempotency-Key and are retried with the same key and body on a network
// error, 502, 503, 504 or 409 idempotency_key_in_use, until they get an answer that settles them.
// Every creation that got a 201 goes into a ledger, checked against the database afterwards.
import { randomUUID } from 'node:crypto';
import type { ClusterState } from '../../scripts/cluster/state.js';
import { sleep, usersInPrimary } from './harness.js';

export interface Attempt {
  method: string;
  /** When it was sent, ms since the load started. */
  at: number;
  latencyMs: number;
  /** 0: no HTTP answer (connection refused, reset, timeout). */
  status: number;
  code?: string;
}

export interface Outcome {
  method: 'GET' | 'POST';
  path: string;
  at: number;
  doneAt: number;
  status: number;
  code?: string;
  attempts: number;
}

export interface Acknowledged {
  key: string;
  username: string;
  id: string;
  replayed: boolean;
  attempts: number;
}

export interface LoadResult {
  outcomes: Outcome[];
  attempts: Attempt[];
  ledger: Acknowledged[];
  durationMs: number;
}

export interface LoadOptions {
  url: string;
  auth: string;
  usernamePrefix: string;
  durationMs: number;
  concurrency?: number;
  /** Share of requests that create a user (default 0.4). */
  writeShare?: number;
  /** How long one creation keeps being retried before the client gives up (default 30 s). */
  retryForMs?: number;
  /** Reads go only to users acknowledged at least this long ago (default 3 s). */
  readAfterMs?: number;
}

const RETRYABLE = new Set([0, 502, 503, 504]);

async function send(url: string, init: RequestInit, started: number, attempts: Attempt[]) {
  const at = Date.now();
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(20_000) });
    const text = await response.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // Not JSON (an HTML error page would be a finding in itself: its status says enough).
    }
    const code = typeof body.code === 'string' ? body.code : undefined;
    attempts.push({
      method: init.method ?? 'GET',
      at: at - started,
      latencyMs: Date.now() - at,
      status: response.status,
      ...(code ? { code } : {}),
    });
    return { status: response.status, body, headers: response.headers, code };
  } catch {
    attempts.push({ method: init.method ?? 'GET', at: at - started, latencyMs: Date.now() - at, status: 0 });
    return { status: 0, body: {}, headers: new Headers(), code: undefined };
  }
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { url, auth, usernamePrefix, durationMs } = options;
  const concurrency = options.concurrency ?? 8;
  const writeShare = options.writeShare ?? 0.4;
  const retryForMs = options.retryForMs ?? 30_000;
  const readAfterMs = options.readAfterMs ?? 3_000;
  const outcomes: Outcome[] = [];
  const attempts: Attempt[] = [];
  const ledger: Acknowledged[] = [];
  const acknowledgedAt: { id: string; at: number }[] = [];
  const started = Date.now();
  let counter = 0;

  async function create(): Promise<void> {
    counter += 1;
    const username = `${usernamePrefix}${counter}`;
    const key = randomUUID();
    const body = JSON.stringify({ username, email: `${username}@example.com`, password: 'load-test-password-1' });
    const at = Date.now();
    let tries = 0;
    for (;;) {
      tries += 1;
      const answer = await send(
        `${url}/v1/users`,
        { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json', 'idempotency-key': key }, body },
        started,
        attempts,
      );
      const retry = RETRYABLE.has(answer.status) || (answer.status === 409 && answer.code === 'idempotency_key_in_use');
      if (retry && Date.now() - at < retryForMs) {
        await sleep(150 + Math.random() * 150);
        continue;
      }
      outcomes.push({
        method: 'POST',
        path: '/v1/users',
        at: at - started,
        doneAt: Date.now() - started,
        status: answer.status,
        attempts: tries,
        ...(answer.code ? { code: answer.code } : {}),
      });
      if (answer.status === 201) {
        const id = String(answer.body.id);
        ledger.push({ key, username, id, replayed: answer.headers.get('idempotent-replayed') === 'true', attempts: tries });
        acknowledgedAt.push({ id, at: Date.now() });
      }
      return;
    }
  }

  async function read(): Promise<void> {
    const settled = acknowledgedAt.filter((entry) => Date.now() - entry.at >= readAfterMs);
    const pick = Math.random();
    const path =
      settled.length > 0 && pick < 0.6
        ? `/v1/users/${settled[Math.floor(Math.random() * settled.length)]?.id}`
        : pick < 0.8
          ? '/v1/users/me'
          : `/v1/users?limit=5&q=${usernamePrefix}`;
    const at = Date.now();
    const answer = await send(`${url}${path}`, { method: 'GET', headers: { authorization: auth } }, started, attempts);
    outcomes.push({
      method: 'GET',
      path,
      at: at - started,
      doneAt: Date.now() - started,
      status: answer.status,
      attempts: 1,
      ...(answer.code ? { code: answer.code } : {}),
    });
  }

  async function worker(): Promise<void> {
    while (Date.now() - started < durationMs) {
      if (Math.random() < writeShare) await create();
      else await read();
    }
  }

  await Promise.all(Array.from({ length: concurrency }, worker));
  return { outcomes, attempts, ledger, durationMs: Date.now() - started };
}

function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

/** What the run saw, for the test log. */
export function summarize(result: LoadResult): string {
  const seconds = result.durationMs / 1000;
  const retried = result.outcomes.filter((outcome) => outcome.attempts > 1).length;
  return [
    `${result.outcomes.length} requests in ${seconds.toFixed(1)} s (${(result.outcomes.length / seconds).toFixed(0)}/s), ${result.attempts.length} HTTP attempts`,
    `final statuses: ${JSON.stringify(countBy(result.outcomes, (outcome) => `${outcome.method} ${outcome.status}${outcome.code ? ` ${outcome.code}` : ''}`))}`,
    `attempt statuses: ${JSON.stringify(countBy(result.attempts, (attempt) => `${attempt.method} ${attempt.status}`))}`,
    `creations retried by the client: ${retried}; acknowledged: ${result.ledger.length}, of which replayed: ${result.ledger.filter((entry) => entry.replayed).length}`,
  ].join('\n');
}

export interface LedgerCheck {
  /** Acknowledged creations absent from the primary (or present with another id). */
  lost: Acknowledged[];
  /** Usernames present more than once. */
  duplicated: string[];
  /** Rows of this run that no 201 acknowledged (a client gave up): allowed, reported. */
  unacknowledged: number;
}

export async function checkLedger(state: ClusterState, usernamePrefix: string, ledger: Acknowledged[]): Promise<LedgerCheck> {
  const rows = await usersInPrimary(state, usernamePrefix);
  const byUsername = new Map<string, string[]>();
  for (const row of rows) byUsername.set(row.username, [...(byUsername.get(row.username) ?? []), row.id]);
  const acknowledged = new Set(ledger.map((entry) => entry.username));
  return {
    lost: ledger.filter((entry) => !(byUsername.get(entry.username) ?? []).includes(entry.id)),
    duplicated: [...byUsername].filter(([, ids]) => ids.length > 1).map(([username]) => username),
    unacknowledged: rows.filter((row) => !acknowledged.has(row.username)).length,
  };
}
