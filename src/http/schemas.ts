// Schemas shared by every module: the problem+json body and the error responses a route declares.
import { type TSchema, Type } from 'typebox';
import { ERROR_CATALOGUE, type ErrorCode } from './errors.js';

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

/** Response schemas for the given error codes, for the OpenAPI document. */
interface ProblemResponse {
  description: string;
  content: { 'application/problem+json': { schema: TSchema } };
}

export function errorResponses(...codes: ErrorCode[]): Record<number, ProblemResponse> {
  const codesByStatus = new Map<number, string[]>();
  for (const code of codes) {
    const { status } = ERROR_CATALOGUE[code];
    codesByStatus.set(status, [...(codesByStatus.get(status) ?? []), code]);
  }
  const responses: Record<number, ProblemResponse> = {};
  for (const [status, statusCodes] of codesByStatus) {
    responses[status] = {
      description: `code: ${statusCodes.join(' or ')}`,
      content: { 'application/problem+json': { schema: Type.Ref('Problem') } },
    };
  }
  return responses;
}

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
