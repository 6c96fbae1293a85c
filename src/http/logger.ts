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
