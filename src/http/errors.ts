// The error model: one AppError, one catalogue of stable codes, one renderer of RFC 9457
// problem+json (https://www.rfc-editor.org/rfc/rfc9457). Anything that is not an AppError or a
// known Fastify client error becomes a generic 500 and is logged with the request context.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isDatabaseUnavailable } from '../db/errors.js';

export const ERROR_CATALOGUE = {
  invalid_request: { status: 400, title: 'The request is not valid' },
  weak_password: { status: 422, title: 'The password does not meet the password policy' },
  unauthorized: { status: 401, title: 'Authentication is required' },
  forbidden: { status: 403, title: 'The caller may not do this' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  username_taken: { status: 409, title: 'The username is taken' },
  email_taken: { status: 409, title: 'The email address is taken' },
  last_admin: { status: 409, title: 'At least one active admin must remain' },
  idempotency_key_reused: { status: 422, title: 'The Idempotency-Key was used for a different request' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  too_many_requests: { status: 429, title: 'Too many requests' },
  internal_error: { status: 500, title: 'Internal error' },
  overloaded: { status: 503, title: 'The service is overloaded' },
  unavailable: { status: 503, title: 'The service is not ready' },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface FieldError {
  field: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  request_id: string;
  errors?: FieldError[];
}

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly options: { cause?: unknown; errors?: FieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(detail, { cause: options.cause });
    this.status = ERROR_CATALOGUE[code].status;
  }

  static invalid(errors: FieldError[], detail = 'The request has invalid fields; see errors.'): AppError {
    return new AppError('invalid_request', detail, { errors });
  }

  static unauthorized(): AppError {
    return new AppError('unauthorized', 'Valid credentials are required.');
  }

  static notFound(what = 'The resource'): AppError {
    return new AppError('not_found', `${what} does not exist.`);
  }

  static forbidden(detail = 'The caller may not do this.'): AppError {
    return new AppError('forbidden', detail);
  }
}

export const WWW_AUTHENTICATE = 'Basic realm="gatehouse", Bearer realm="gatehouse"';

export function problemType(code: ErrorCode): string {
  return `urn:gatehouse:problem:${code}`;
}

export function sendProblem(reply: FastifyReply, error: AppError): FastifyReply {
  const problem: Problem = {
    type: problemType(error.code),
    title: ERROR_CATALOGUE[error.code].title,
    status: error.status,
    code: error.code,
    detail: error.detail,
    request_id: String(reply.request.id),
  };
  if (error.options.errors) problem.errors = error.options.errors;
  if (error.code === 'unauthorized') reply.header('www-authenticate', WWW_AUTHENTICATE);
  for (const [name, value] of Object.entries(error.options.headers ?? {})) reply.header(name, value);
  return reply.code(error.status).type('application/problem+json; charset=utf-8').serializer(JSON.stringify).send(problem);
}

/** Fastify's own client errors, by code, mapped onto the catalogue. */
const FASTIFY_CLIENT_ERRORS: Record<string, (error: FastifyError) => AppError> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () => new AppError('payload_too_large', 'The request body is larger than this service accepts.'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () =>
    new AppError('unsupported_media_type', 'Send application/json (or a form body where the endpoint allows one).'),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => new AppError('invalid_request', 'The Content-Length does not match the body.'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => AppError.invalid([{ field: 'body', message: 'is empty but declared as JSON' }]),
  FST_ERR_CTP_INVALID_JSON_BODY: () => AppError.invalid([{ field: 'body', message: 'is not valid JSON' }]),
  FST_ERR_CTP_INVALID_CHARSET: () => new AppError('unsupported_media_type', 'Only UTF-8 bodies are accepted.'),
  FST_ERR_BAD_URL: () => new AppError('invalid_request', 'The URL is not valid.'),
  FST_ERR_ASYNC_CONSTRAINT: () => new AppError('invalid_request', 'The request is not valid.'),
};

interface ValidationIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

function fieldErrors(error: FastifyError): FieldError[] {
  const context = (error as FastifyError & { validationContext?: string }).validationContext ?? 'body';
  const issues = (error.validation ?? []) as ValidationIssue[];
  const seen = new Set<string>();
  const result: FieldError[] = [];
  for (const issue of issues) {
    let path = (issue.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    let message = issue.message ?? 'is not valid';
    if (issue.keyword === 'additionalProperties' && typeof issue.params?.additionalProperty === 'string') {
      path = path ? `${path}.${issue.params.additionalProperty}` : issue.params.additionalProperty;
      message = 'is not a known or allowed field';
    } else if (issue.keyword === 'required' && typeof issue.params?.missingProperty === 'string') {
      path = path ? `${path}.${issue.params.missingProperty}` : issue.params.missingProperty;
      message = 'is required';
    }
    const field = path || (context === 'body' ? 'body' : context);
    const key = `${field}\u0000${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      result.push({ field, message });
    }
  }
  return result.length > 0 ? result : [{ field: context, message: error.message }];
}

export function toAppError(error: unknown): AppError | null {
  if (error instanceof AppError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError?.validation) return AppError.invalid(fieldErrors(fastifyError));
  const mapped = fastifyError?.code ? FASTIFY_CLIENT_ERRORS[fastifyError.code] : undefined;
  if (mapped) return mapped(fastifyError);
  // Errors from plugins that carry a client status (for example the rate limiter) keep it.
  if (fastifyError?.statusCode === 429) {
    return new AppError('too_many_requests', 'Too many requests; retry later.');
  }
  if (typeof fastifyError?.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return new AppError('invalid_request', 'The request is not valid.');
  }
  if (isDatabaseUnavailable(error)) {
    return new AppError('unavailable', 'The database is not answering; retry shortly.', { cause: error, headers: { 'retry-after': '5' } });
  }
  return null;
}

// A full hashing pool can shed thousands of requests a second, and a log line each would cost more
// than the answer: one line every 10 s says how many (gatehouse_password_hash_rejections_total counts
// each one).
const SHED_REPORT_INTERVAL_MS = 10_000;
let shedSinceReport = 0;
let lastShedReport = 0;

function logServerSide(request: FastifyRequest, appError: AppError): void {
  if (appError.code === 'overloaded') {
    shedSinceReport += 1;
    const now = Date.now();
    if (now - lastShedReport < SHED_REPORT_INTERVAL_MS) return;
    request.log.warn(
      { code: appError.code, shed: shedSinceReport },
      `${shedSinceReport} request(s) answered 503 overloaded since the last report`,
    );
    shedSinceReport = 0;
    lastShedReport = now;
    return;
  }
  request.log.warn({ code: appError.code, err: appError.options.cause }, appError.detail);
}

export function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const appError = toAppError(error);
  if (appError) {
    if (appError.status >= 500) logServerSide(request, appError);
    return sendProblem(reply, appError);
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendProblem(reply, new AppError('internal_error', 'Something went wrong on our side; the request id identifies it.'));
}
