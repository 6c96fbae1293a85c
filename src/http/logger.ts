// pino JSON logs. Requests are logged by path and route only: the query string can carry origin
// clients' passwords (POST /api/users?password=…), so it is never logged; neither are headers
// (Authorization, cookies) nor bodies.
import pino, { type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config.js';

interface LoggedRequest {
  method?: string;
  url?: string;
  id?: unknown;
  ip?: string;
  routeOptions?: { url?: string };
}

export function createLogger(config: Pick<Config, 'logLevel'>, destination?: DestinationStream): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { service: 'gatehouse' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'req.headers',
          'headers.authorization',
          '*.password',
          '*.new_password',
          '*.current_password',
          '*.refresh_token',
          '*.access_token',
        ],
        censor: '[redacted]',
      },
      serializers: {
        req(request: LoggedRequest) {
          return {
            method: request.method,
            path: (request.url ?? '').split('?')[0],
            route: request.routeOptions?.url,
            ip: request.ip,
          };
        },
      },
    },
    destination,
  );
}

type LogMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * A request's logger that makes its pino child (with the request id bound) only when a line is
 * actually written. At `warn` and above a request that goes well logs nothing, and making the child
 * anyway (binding and redacting the request id) was 2-3% of a request's CPU time in bench S1/S2.
 */
export class DeferredChildLogger {
  #child: Logger | undefined;
  private readonly parent: Logger;
  private readonly bindings: pino.Bindings;
  private readonly options: pino.ChildLoggerOptions;

  constructor(parent: Logger, bindings: pino.Bindings, options: pino.ChildLoggerOptions) {
    this.parent = parent;
    this.bindings = bindings;
    this.options = options;
  }

  get level(): string {
    return this.options.level ?? this.parent.level;
  }

  set level(level: string) {
    this.#made().level = level;
  }

  #made(): Logger {
    this.#child ??= this.parent.child(this.bindings, this.options);
    return this.#child;
  }

  #write(method: LogMethod, args: unknown[]): void {
    // A child with its own level (a route's logLevel) decides for itself.
    if (this.#child === undefined && this.options.level === undefined && !this.parent.isLevelEnabled(method)) return;
    (this.#made()[method] as (...values: unknown[]) => void)(...args);
  }

  fatal(...args: unknown[]): void {
    this.#write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.#write('error', args);
  }
  warn(...args: unknown[]): void {
    this.#write('warn', args);
  }
  info(...args: unknown[]): void {
    this.#write('info', args);
  }
  debug(...args: unknown[]): void {
    this.#write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.#write('trace', args);
  }
  silent(): void {}

  child(bindings: pino.Bindings, options?: pino.ChildLoggerOptions): Logger {
    return this.#made().child(bindings, options);
  }
}
