// S7 (issue 6): an import of many users that arrive with password hashes, in users per second from
// the first byte of the upload until the job reports completed. The NDJSON is generated while it is
// sent (nothing on disk); every row carries the same argon2id hash, made once with the production
// parameters, so the import does no hashing, as when moving users over from another system.
import { Readable } from 'node:stream';
import argon2 from 'argon2';
import { HASH_PROFILES } from '../../src/modules/sessions/passwords.js';

export interface ImportFigures {
  rows: number;
  created: number;
  skipped: number;
  failed: number;
  status: string;
  /** From the first byte sent to the 202 (the upload stored as chunks). */
  uploadSeconds: number;
  /** From the first byte sent to the job's completed status. */
  totalSeconds: number;
  usersPerSecond: number;
  uploadBytes: number;
}

/** One argon2id hash with the live (OWASP) parameters, shared by every imported row. */
export function productionHash(password: string): Promise<string> {
  return argon2.hash(password, { type: argon2.argon2id as 2, ...HASH_PROFILES.owasp });
}

function* ndjson(rows: number, tag: string, passwordHash: string, counted: { bytes: number }): Generator<Buffer> {
  // Lines are sent in blocks of a few hundred, as a file would be read.
  const BLOCK = 500;
  for (let first = 1; first <= rows; first += BLOCK) {
    let text = '';
    for (let n = first; n < Math.min(rows + 1, first + BLOCK); n++) {
      const username = `imp-${tag}-${n}`;
      const lastLogin = n % 5 === 0 ? '' : `,"last_login_at":"2026-${String((n % 12) + 1).padStart(2, '0')}-15T08:30:00Z"`;
      text += `{"username":"${username}","email":"${username}@example.com","password_hash":"${passwordHash}"${lastLogin}}\n`;
    }
    const block = Buffer.from(text);
    counted.bytes += block.length;
    yield block;
  }
}

/** Uploads `rows` users to POST /v1/imports and waits for the job to finish; throws if it does not in time. */
export async function runImport(base: string, authorization: string, rows: number, passwordHash: string, log: (line: string) => void) {
  const tag = Date.now().toString(36);
  const counted = { bytes: 0 };
  const started = performance.now();
  const response = await fetch(`${base}/v1/imports`, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/x-ndjson' },
    body: Readable.toWeb(Readable.from(ndjson(rows, tag, passwordHash, counted))) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
  const accepted = (await response.json()) as { id?: string };
  const uploadSeconds = (performance.now() - started) / 1000;
  if (response.status !== 202 || !accepted.id) throw new Error(`POST /v1/imports: ${response.status} ${JSON.stringify(accepted)}`);
  log(`  S7: ${rows} rows uploaded in ${uploadSeconds.toFixed(1)} s; waiting for the workers`);
  // Generous: an import slower than 100 users/s is a failure to report, not to wait for.
  const deadline = started + Math.max(120, rows / 100) * 1000;
  let lastLog = performance.now();
  for (;;) {
    const job = (await (await fetch(`${base}/v1/imports/${accepted.id}`, { headers: { authorization } })).json()) as {
      status: string;
      created: number;
      skipped: number;
      failed: number;
    };
    const now = performance.now();
    if (job.status === 'completed' || job.status === 'failed') {
      const totalSeconds = (now - started) / 1000;
      return {
        rows,
        created: job.created,
        skipped: job.skipped,
        failed: job.failed,
        status: job.status,
        uploadSeconds,
        totalSeconds,
        usersPerSecond: job.created / totalSeconds,
        uploadBytes: counted.bytes,
      } satisfies ImportFigures;
    }
    if (now > deadline) throw new Error(`the import did not finish in ${((now - started) / 1000).toFixed(0)} s: ${JSON.stringify(job)}`);
    if (now - lastLog > 15_000) {
      log(`  S7: ${job.created} created after ${((now - started) / 1000).toFixed(0)} s`);
      lastLog = now;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
