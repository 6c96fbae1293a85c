// Opaque keyset-pagination cursors: base64url JSON of the last row's sort key and id.
// A cursor that does not decode is a client error, reported on the `cursor` field.
import { AppError } from '../http/errors.js';

export interface CursorPosition {
  /** The sort column's value at the last row of the page (null for a NULL sort value). */
  value: string | null;
  id: string;
}

export function encodeCursor(position: CursorPosition, sort: string): string {
  return Buffer.from(JSON.stringify([sort, position.value, position.id])).toString('base64url');
}

export function decodeCursor(cursor: string, sort: string): CursorPosition {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(decoded) && decoded.length === 3) {
      const [cursorSort, value, id] = decoded;
      if (cursorSort === sort && (typeof value === 'string' || value === null) && typeof id === 'string') {
        return { value, id };
      }
    }
  } catch {
    // fall through to the client error
  }
  throw AppError.invalid([{ field: 'cursor', message: 'is not a cursor from this listing (same sort and filters)' }]);
}
