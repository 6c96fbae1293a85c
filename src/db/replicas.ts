// Read replicas: which PostgreSQL server a read may go to. A request handler marked as a replica
// read runs inside readsFromReplica(minimumLsn, ...); every connection it takes comes from a
// replica that is healthy (answers, lags at most maxLagSeconds) and has replayed at least
// minimumLsn, else from the primary. Everything else (writes, transactions, the auth check) uses
// the primary. A poll each second keeps each replica's replay position and lag.
import { AsyncLocalStorage } from 'node:async_hooks';
import type pg from 'pg';

/** A WAL position (pg_lsn) as a number: "16/B374D848" is 0x16B374D848. */
export type Lsn = bigint;

export function parseLsn(text: string | null | undefined): Lsn | null {
  if (!text) return null;
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!match) return null;
  return (BigInt(`0x${match[1]}`) << 32n) + BigInt(`0x${match[2]}`);
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

interface ReadContext {
  minimumLsn: Lsn | null;
}

const readContext = new AsyncLocalStorage<ReadContext>();

/** Runs fn with its database reads allowed on a replica that has replayed minimumLsn. */
export function readsFromReplica<T>(minimumLsn: Lsn | null, fn: () => T): T {
  return readContext.run({ minimumLsn }, fn);
}

/**
 * The WAL position the current replica read must see (null when it need see nothing in particular);
 * null outside a replica read, where every read goes to the primary and sees every commit.
 */
export function currentReadMinimum(): Lsn | null {
  return readContext.getStore()?.minimumLsn ?? null;
}

export interface ReplicaState {
  name: string;
  /** Receives reads: answered the last poll and lags at most the threshold. */
  up: boolean;
  replayLsn: Lsn | null;
  lagSeconds: number;
}

export interface ReplicaRouterOptions {
  primary: pg.Pool;
  replicas: { name: string; pool: pg.Pool }[];
  maxLagSeconds: number;
  pollIntervalMs?: number;
  onRead?: (target: string) => void;
  onStateChange?: (state: ReplicaState, reason: string) => void;
}

export interface ReplicaRouter {
  /** What Kysely's PostgresDialect takes as its pool: connect() picks the server. */
  pool: { connect(): Promise<pg.PoolClient>; end(): Promise<void> };
  /** The primary's current WAL position: a write that has committed is at or before it. */
  primaryLsn(): Promise<Lsn | null>;
  states(): ReplicaState[];
  /** One poll now (tests; the timer polls by itself). */
  poll(): Promise<void>;
}

// How far back the primary's positions are remembered to tell how old a replica's position is.
const HISTORY_SECONDS = 600;

export function createReplicaRouter(options: ReplicaRouterOptions): ReplicaRouter {
  const { primary, maxLagSeconds } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const replicas = options.replicas.map((replica) => ({
    ...replica,
    state: { name: replica.name, up: false, replayLsn: null as Lsn | null, lagSeconds: Number.POSITIVE_INFINITY },
  }));
  // (time, primary position) samples, oldest first: a replica at position P lags by the age of the
  // oldest sample beyond P, i.e. since when the primary has had something the replica has not.
  const history: { at: number; lsn: Lsn }[] = [];
  let nextReplica = 0;
  let closed = false;

  async function queryLsn(pool: pg.Pool, text: string): Promise<Lsn | null> {
    const result = await pool.query<{ lsn: string | null }>(text);
    return parseLsn(result.rows[0]?.lsn);
  }

  function lagOf(replayLsn: Lsn | null, now: number): number {
    if (replayLsn === null) return Number.POSITIVE_INFINITY;
    const behind = history.find((sample) => sample.lsn > replayLsn);
    return behind ? (now - behind.at) / 1000 : 0;
  }

  async function poll(): Promise<void> {
    const now = Date.now();
    try {
      const lsn = await queryLsn(primary, 'select pg_current_wal_lsn()::text as lsn');
      if (lsn !== null && (history.length === 0 || lsn > (history[history.length - 1] as { lsn: Lsn }).lsn)) history.push({ at: now, lsn });
      while (history.length > 1 && (history[0] as { at: number }).at < now - HISTORY_SECONDS * 1000) history.shift();
    } catch {
      // Primary away: keep the last known positions, so that replicas keep serving reads they can.
    }
    await Promise.all(
      replicas.map(async (replica) => {
        const before = replica.state.up;
        let reason = '';
        try {
          replica.state.replayLsn = await queryLsn(replica.pool, 'select pg_last_wal_replay_lsn()::text as lsn');
          replica.state.lagSeconds = lagOf(replica.state.replayLsn, now);
          replica.state.up = replica.state.replayLsn !== null && replica.state.lagSeconds <= maxLagSeconds;
          if (!replica.state.up)
            reason =
              replica.state.replayLsn === null ? 'not a replica (no replay position)' : `lags ${replica.state.lagSeconds.toFixed(1)} s`;
        } catch (error) {
          replica.state.up = false;
          replica.state.lagSeconds = Number.POSITIVE_INFINITY;
          reason = `does not answer: ${(error as Error).message}`;
        }
        if (before !== replica.state.up) options.onStateChange?.({ ...replica.state }, replica.state.up ? 'caught up and answers' : reason);
      }),
    );
  }

  let polling: Promise<void> | null = null;
  const timer =
    replicas.length > 0
      ? setInterval(() => {
          if (!polling && !closed) polling = poll().finally(() => (polling = null));
        }, pollIntervalMs)
      : null;
  timer?.unref();
  if (replicas.length > 0) polling = poll().finally(() => (polling = null));

  function pick(minimumLsn: Lsn | null) {
    for (let i = 0; i < replicas.length; i++) {
      const replica = replicas[(nextReplica + i) % replicas.length];
      if (!replica?.state.up || replica.state.replayLsn === null) continue;
      if (minimumLsn !== null && replica.state.replayLsn < minimumLsn) continue;
      nextReplica = (nextReplica + i + 1) % replicas.length;
      return replica;
    }
    return null;
  }

  return {
    pool: {
      async connect() {
        const context = readContext.getStore();
        if (!context || replicas.length === 0) return primary.connect();
        const replica = pick(context.minimumLsn);
        if (replica) {
          try {
            const client = await replica.pool.connect();
            options.onRead?.(replica.name);
            return client;
          } catch {
            // It went away since the last poll: take it out now rather than at the next poll.
            replica.state.up = false;
            options.onStateChange?.({ ...replica.state }, 'refused a connection');
          }
        }
        options.onRead?.('primary');
        return primary.connect();
      },
      async end() {
        closed = true;
        if (timer) clearInterval(timer);
        await polling;
        await Promise.all([primary.end(), ...replicas.map((replica) => replica.pool.end())]);
      },
    },
    async primaryLsn() {
      return queryLsn(primary, 'select pg_current_wal_lsn()::text as lsn');
    },
    states: () => replicas.map((replica) => ({ ...replica.state })),
    poll,
  };
}
