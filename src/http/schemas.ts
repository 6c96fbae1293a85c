// Schemas shared by every module: the problem+json body and the error responses a route declares;
// and sending a body that is already serialized JSON.
import type { FastifyReply } from 'fastify';
import { type TSchema, Type } from 'typebox';
import { ERROR_CATALOGUE, type ErrorCode, type FieldError, type Problem, problemType, WWW_AUTHENTICATE } from './errors.js';

/**
 * Sends JSON that is already serialized, as text or as its UTF-8 bytes (Fastify sends either as it
 * is; the content type must be set, or a Buffer would go out as application/octet-stream).
 */
export function sendJsonText(reply: FastifyReply, body: string | Buffer): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(body);
}

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ enum: Object.keys(ERROR_CATALOGUE) }),
    detail: Type.String(),
    request_id: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details (application/problem+json)' },
);

/** Each code's example in the document: what a client really receives, field errors included. */
const PROBLEM_EXAMPLES: Record<ErrorCode, { detail: string; errors?: FieldError[] }> = {
  invalid_request: {
    detail: 'The request has invalid fields; see errors.',
    errors: [{ field: 'email', message: 'must be a valid email address' }],
  },
  weak_password: {
    detail: 'The password is too common; choose another.',
    errors: [{ field: 'password', message: 'is too common; choose another' }],
  },
  unauthorized: { detail: 'Valid credentials are required.' },
  forbidden: { detail: 'Only an admin may do this.' },
  not_found: { detail: 'The user does not exist.' },
  method_not_allowed: { detail: 'PUT is not allowed here; use GET.' },
  username_taken: { detail: 'Another account has this username.' },
  email_taken: { detail: 'Another account has this email address.' },
  last_admin: { detail: 'This is the last active admin; make another admin first.' },
  idempotency_key_reused: {
    detail: 'This Idempotency-Key was already used for a different request; use a new key for a new request.',
  },
  payload_too_large: { detail: 'The request body is larger than this service accepts.' },
  unsupported_media_type: { detail: 'Send application/json (or a form body where the endpoint allows one).' },
  too_many_requests: { detail: 'More than 1200 requests a minute from this address; slow down.' },
  internal_error: { detail: 'Something went wrong on our side; the request id identifies it.' },
  overloaded: { detail: 'Too many sign-ins are being checked right now; retry shortly.' },
  unavailable: { detail: 'The database does not answer.' },
};

export function problemExample(code: ErrorCode): Problem {
  const { detail, errors } = PROBLEM_EXAMPLES[code];
  const { status, title } = ERROR_CATALOGUE[code];
  return {
    type: problemType(code),
    title,
    status,
    code,
    detail,
    request_id: '0b9d6c1e-4f3a-4a8e-9d2c-7e5f1a2b3c4d',
    ...(errors ? { errors } : {}),
  };
}

const RETRY_AFTER = Type.String({ description: 'Seconds to wait before retrying', examples: ['30'] });
/** Headers that sendProblem adds for some codes (errors.ts), so a client knows to look for them. */
const PROBLEM_HEADERS: Partial<Record<number, Record<string, TSchema>>> = {
  401: { 'www-authenticate': Type.String({ description: 'The schemes accepted', examples: [WWW_AUTHENTICATE] }) },
  405: { allow: Type.String({ description: 'The methods this path accepts', examples: ['GET'] }) },
  429: { 'retry-after': RETRY_AFTER },
  503: { 'retry-after': RETRY_AFTER },
};

interface ProblemResponse {
  description: string;
  headers?: Record<string, TSchema>;
  content: {
    'application/problem+json': {
      schema: TSchema;
      example?: Problem;
      examples?: Record<string, { summary: string; value: Problem }>;
    };
  };
}

/**
 * The error responses of a route, for the OpenAPI document: application/problem+json with one
 * example per code. 429 is always included: the general per-address rate limit (app.ts) covers
 * every route.
 */
export function errorResponses(...codes: ErrorCode[]): Record<number, ProblemResponse> {
  const codesByStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set<ErrorCode>([...codes, 'too_many_requests'])) {
    const { status } = ERROR_CATALOGUE[code];
    codesByStatus.set(status, [...(codesByStatus.get(status) ?? []), code]);
  }
  const responses: Record<number, ProblemResponse> = {};
  for (const [status, statusCodes] of [...codesByStatus].sort(([a], [b]) => a - b)) {
    const schema = Type.Ref('Problem');
    const [only] = statusCodes;
    const media =
      statusCodes.length === 1 && only
        ? { schema, example: problemExample(only) }
        : {
            schema,
            examples: Object.fromEntries(
              statusCodes.map((code) => [code, { summary: ERROR_CATALOGUE[code].title, value: problemExample(code) }]),
            ),
          };
    const headers = PROBLEM_HEADERS[status];
    responses[status] = {
      description: statusCodes.map((code) => `${ERROR_CATALOGUE[code].title} (code ${code})`).join('; '),
      ...(headers ? { headers } : {}),
      content: { 'application/problem+json': media },
    };
  }
  return responses;
}

/**
 * A JSON success response with its description and the example /docs shows. The example sits on
 * the media type because @fastify/swagger drops keywords next to a $ref.
 */
export function jsonResponse<T extends TSchema>(
  description: string,
  schema: T,
  example: unknown,
  headers?: Record<string, TSchema>,
): { description: string; headers?: Record<string, TSchema>; content: { 'application/json': { schema: T; example: unknown } } } {
  return { description, ...(headers ? { headers } : {}), content: { 'application/json': { schema, example } } };
}

/** The Location header of a response that created something. */
export function locationHeader(example: string): Record<string, TSchema> {
  return { location: Type.String({ description: 'Where the created resource is read', examples: [example] }) };
}

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
