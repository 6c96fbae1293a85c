// Sign-in throttling, after rate-limiter-flexible's login-protection recipe (ASVS 4.0.3 2.2.1,
// 5.0 6.1.1): each attempt is charged before its password is verified, so parallel guesses
// spread over many instances can never verify more passwords than a limit allows.
//   - per (username, IP): 10 failures in an hour, then 429 until the hour is over;
//   - per IP: 100 failures a day, then 429;
//   - per username from all IPs: past 100 failures an hour every attempt is slowed down, never
//     refused, so an attacker cannot lock the real user out.
// A success clears the (username, IP) counter and refunds the others. Counters live in Redis when
// configured (shared by every instance); when Redis does not answer, a stricter per-instance
// limiter takes over within a second, and Redis takes back over once it answers again.
import { createHash } from 'node:crypto';
import { normalizeIP } from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError } from '../../http/errors.js';

export interface ThrottleLimits {
  failuresPerUsernameAndIp: number;
  failuresPerUsernameAndIpWindowSeconds: number;
  failuresPerIpPerDay: number;
  failuresPerUsernamePerHour: number;
  slowdownMilliseconds: number;
}

export const DEFAULT_THROTTLE_LIMITS: ThrottleLimits = {
  failuresPerUsernameAndIp: 10,
  failuresPerUsernameAndIpWindowSeconds: 3600,
  failuresPerIpPerDay: 100,
  failuresPerUsernamePerHour: 100,
  slowdownMilliseconds: 1000,
};

export interface SignInAttempt {
  /** Call once the password was checked: a success clears and refunds the counters. */
  finish(success: boolean): Promise<void>;
  /** Call when no password could be checked (503 overloaded): refunds the charge, as nothing failed. */
  cancel(): Promise<void>;
}

export interface SignInThrottle {
  /** Charges an attempt; throws 429 too_many_requests when blocked, waits when slowed down. */
  begin(username: string, ip: string): Promise<SignInAttempt>;
  /** True while the shared (Redis) counters are in use; false on the per-instance fallback. */
  readonly shared: boolean;
}

interface Logger {
  warn(object: object, message: string): void;
  info(object: object, message: string): void;
}

const RETRY_REDIS_AFTER_MS = 1000;

/** One rule, kept in Redis when it answers and in this process otherwise. */
class FailoverLimiter {
  constructor(
    private readonly redis: RateLimiterAbstract | null,
    private readonly memory: RateLimiterAbstract,
    private readonly health: RedisHealth,
  ) {}

  private async call<T>(work: (limiter: RateLimiterAbstract) => Promise<T>): Promise<T> {
    if (this.redis && this.health.usable()) {
      try {
        return await work(this.redis);
      } catch (error) {
        if (error instanceof RateLimiterRes) throw error;
        this.health.failed(error);
      }
    }
    return work(this.memory);
  }

  /** Remaining points after charging one (negative when over), and ms until the window resets. */
  async consume(key: string): Promise<{ over: boolean; msBeforeNext: number }> {
    try {
      const result = await this.call((limiter) => limiter.consume(key, 1));
      return { over: false, msBeforeNext: result.msBeforeNext };
    } catch (error) {
      if (error instanceof RateLimiterRes) return { over: true, msBeforeNext: error.msBeforeNext };
      throw error;
    }
  }

  async reward(key: string): Promise<void> {
    await this.call((limiter) => limiter.reward(key, 1)).catch(() => {});
  }

  async delete(key: string): Promise<void> {
    await this.call((limiter) => limiter.delete(key)).catch(() => {});
  }
}

/** Tracks whether Redis answers; logs each change of state once. */
class RedisHealth {
  private downSince = 0;
  constructor(private readonly logger: Logger) {}

  usable(): boolean {
    return this.downSince === 0 || Date.now() - this.downSince >= RETRY_REDIS_AFTER_MS;
  }

  failed(error: unknown): void {
    if (this.downSince === 0) {
      this.logger.warn({ err: error }, 'redis is unreachable: sign-in throttling falls back to stricter per-instance limits');
    }
    this.downSince = Date.now();
  }

  succeeded(): void {
    if (this.downSince !== 0) {
      this.downSince = 0;
      this.logger.info({}, 'redis answers again: sign-in throttling is shared across instances again');
    }
  }

  get up(): boolean {
    return this.downSince === 0;
  }
}

function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 32);
}

export function createSignInThrottle(options: {
  redis: Redis | null;
  keyPrefix: string;
  limits?: ThrottleLimits;
  onSlowed?: () => void;
  logger: Logger;
}): SignInThrottle {
  const limits = options.limits ?? DEFAULT_THROTTLE_LIMITS;
  const health = new RedisHealth(options.logger);

  function limiter(name: string, points: number, duration: number): FailoverLimiter {
    const redis = options.redis
      ? new RateLimiterRedis({
          storeClient: options.redis,
          keyPrefix: `${options.keyPrefix}signin:${name}`,
          points,
          duration,
          rejectIfRedisNotReady: true,
        })
      : null;
    // Without shared counters each instance sees only part of the traffic: be stricter.
    const memoryPoints = options.redis ? Math.max(1, Math.ceil(points / 2)) : points;
    const memory = new RateLimiterMemory({ keyPrefix: name, points: memoryPoints, duration });
    return new FailoverLimiter(redis, memory, health);
  }

  const byUsernameAndIp = limiter('user-ip', limits.failuresPerUsernameAndIp, limits.failuresPerUsernameAndIpWindowSeconds);
  const byIp = limiter('ip', limits.failuresPerIpPerDay, 86_400);
  const byUsername = limiter('user', limits.failuresPerUsernamePerHour, 3600);

  function blocked(msBeforeNext: number): AppError {
    return new AppError('too_many_requests', 'Too many failed sign-ins; retry later.', {
      headers: { 'retry-after': String(Math.max(1, Math.ceil(msBeforeNext / 1000))) },
    });
  }

  return {
    get shared() {
      return options.redis !== null && health.up;
    },

    async begin(rawUsername, rawIp) {
      // An IPv6 client usually holds a whole /64: count the network, not each address in it (as
      // the request rate limiter does), so rotating addresses does not reset the counters.
      const ip = normalizeIP(rawIp);
      const user = digest(rawUsername.toLowerCase());
      const userIp = `${user}:${ip}`;
      const wasUsable = options.redis !== null && health.usable();
      const ipCharge = await byIp.consume(ip);
      if (ipCharge.over) throw blocked(ipCharge.msBeforeNext);
      const userIpCharge = await byUsernameAndIp.consume(userIp);
      if (userIpCharge.over) throw blocked(userIpCharge.msBeforeNext);
      const userCharge = await byUsername.consume(user);
      if (wasUsable && health.usable()) health.succeeded();
      if (userCharge.over) {
        options.onSlowed?.();
        await new Promise((resolve) => setTimeout(resolve, limits.slowdownMilliseconds));
      }
      return {
        async finish(success) {
          if (!success) return;
          await Promise.all([byUsernameAndIp.delete(userIp), byIp.reward(ip), byUsername.reward(user)]);
        },
        async cancel() {
          await Promise.all([byUsernameAndIp.reward(userIp), byIp.reward(ip), byUsername.reward(user)]);
        },
      };
    },
  };
}
