// Streaming readers for import files: NDJSON (one JSON object per line) and CSV (RFC 4180: a
// header row naming the columns, quoted fields with "" escapes and line breaks inside quotes).
// They yield the rows of each piece of the stream as it arrives (an array a piece, not a promise a
// row: three async steps per row were most of an upload's CPU time, bench S7), so a file of any size
// never sits in memory at once.
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

export interface ImportRow {
  username?: unknown;
  email?: unknown;
  password?: unknown;
  password_hash?: unknown;
  display_name?: unknown;
  roles?: unknown;
  last_login_at?: unknown;
}

export type ParsedRow = { rowNumber: number; row: ImportRow } | { rowNumber: number; error: string };

const MAX_LINE = 64 * 1024;

/** Lines of a UTF-8 stream, without their line breaks, in one array per piece read. */
async function* lines(stream: Readable): AsyncGenerator<string[]> {
  const decoder = new StringDecoder('utf8');
  let buffer = '';
  let first = true;
  for await (const chunk of stream) {
    buffer += typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer);
    if (first && buffer.length > 0) {
      // A UTF-8 byte-order mark (spreadsheet exports write one) is not part of the first row.
      if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
      first = false;
    }
    const complete: string[] = [];
    let start = 0;
    let newline = buffer.indexOf('\n');
    while (newline !== -1) {
      complete.push(withoutCarriageReturn(buffer.slice(start, newline)));
      start = newline + 1;
      newline = buffer.indexOf('\n', start);
    }
    buffer = buffer.slice(start);
    if (complete.length > 0) yield complete;
    if (buffer.length > MAX_LINE * 16) throw new Error('a line is longer than the import accepts');
  }
  buffer += decoder.end();
  if (buffer.length > 0) yield [withoutCarriageReturn(buffer)];
}

function withoutCarriageReturn(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

export async function* parseNdjson(stream: Readable): AsyncGenerator<ParsedRow[]> {
  let rowNumber = 0;
  for await (const batch of lines(stream)) {
    const rows: ParsedRow[] = [];
    for (const line of batch) {
      if (line.trim() === '') continue;
      rowNumber += 1;
      if (line.length > MAX_LINE) {
        rows.push({ rowNumber, error: 'the line is too long' });
        continue;
      }
      try {
        const value: unknown = JSON.parse(line);
        if (value === null || typeof value !== 'object' || Array.isArray(value)) rows.push({ rowNumber, error: 'is not a JSON object' });
        else rows.push({ rowNumber, row: value as ImportRow });
      } catch {
        rows.push({ rowNumber, error: 'is not valid JSON' });
      }
    }
    if (rows.length > 0) yield rows;
  }
}

/** Splits CSV records; a record may span lines when a quoted field holds a line break. */
export async function* parseCsv(stream: Readable): AsyncGenerator<ParsedRow[]> {
  let header: string[] | null = null;
  let rowNumber = 0;
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let pending = false;
  for await (const batch of lines(stream)) {
    const rows: ParsedRow[] = [];
    for (const line of batch) {
      let i = 0;
      if (!pending) {
        fields = [];
        field = '';
        if (line.trim() === '') continue;
      } else {
        field += '\n';
      }
      while (i < line.length) {
        const c = line[i];
        if (quoted) {
          if (c === '"' && line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          if (c === '"') quoted = false;
          else field += c;
        } else if (c === '"' && field === '') quoted = true;
        else if (c === ',') {
          fields.push(field);
          field = '';
        } else field += c;
        i += 1;
      }
      if (quoted && field.length < MAX_LINE) {
        pending = true;
        continue;
      }
      pending = false;
      quoted = false;
      fields.push(field);
      if (!header) {
        header = fields.map((name) => name.trim().toLowerCase());
        continue;
      }
      rowNumber += 1;
      if (fields.length !== header.length) {
        rows.push({ rowNumber, error: `has ${fields.length} fields; the header has ${header.length}` });
        continue;
      }
      const row: Record<string, unknown> = {};
      header.forEach((name, index) => {
        const value = fields[index] ?? '';
        if (value !== '') row[name] = name === 'roles' ? value.split(/[;|]/).map((role) => role.trim()) : value;
      });
      rows.push({ rowNumber, row });
    }
    if (rows.length > 0) yield rows;
  }
  if (pending) yield [{ rowNumber: rowNumber + 1, error: 'ends inside a quoted field' }];
}
