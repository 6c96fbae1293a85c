// The numbers behind the admin dashboard: user counts and sign-ins per UTC day over the last 30
// days, zero-filled so that a chart needs no gaps handled.
import type { StatsRepository } from './stats.repository.js';

export const STATS_DAYS = 30;
const DAY_MS = 86_400_000;

export interface Stats {
  users: {
    total: number;
    active: number;
    disabled: number;
    signed_in_24h: number;
    signed_in_7d: number;
    never_signed_in: number;
  };
  sign_ins_per_day: { date: string; succeeded: number; failed: number }[];
}

export function createStatsService(stats: StatsRepository, now: () => Date = () => new Date()) {
  return {
    async summary(): Promise<Stats> {
      const at = now();
      const today = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate());
      const firstDay = today - (STATS_DAYS - 1) * DAY_MS;
      const [byStatus, last24h, last7d, never, perDay] = await Promise.all([
        stats.countUsersByStatus(),
        stats.countSignedInSince(new Date(at.getTime() - DAY_MS).toISOString()),
        stats.countSignedInSince(new Date(at.getTime() - 7 * DAY_MS).toISOString()),
        stats.countNeverSignedIn(),
        stats.countSignInsPerDay(new Date(firstDay).toISOString()),
      ]);
      const days = new Map<string, { date: string; succeeded: number; failed: number }>();
      for (let i = 0; i < STATS_DAYS; i++) {
        const date = new Date(firstDay + i * DAY_MS).toISOString().slice(0, 10);
        days.set(date, { date, succeeded: 0, failed: 0 });
      }
      for (const row of perDay) {
        const entry = days.get(row.date);
        if (!entry) continue;
        if (row.success) entry.succeeded += row.count;
        else entry.failed += row.count;
      }
      return {
        users: {
          total: byStatus.active + byStatus.disabled,
          active: byStatus.active,
          disabled: byStatus.disabled,
          signed_in_24h: last24h,
          signed_in_7d: last7d,
          never_signed_in: never,
        },
        sign_ins_per_day: [...days.values()],
      };
    },
  };
}

export type StatsService = ReturnType<typeof createStatsService>;
