// Shared by the import suites: NDJSON bodies, uploading one, the user.created events of one import,
// sign-in, the stored hash of a user, usernames by prefix, and deleting a RabbitMQ work queue a test
// declared.
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import amqp from 'amqplib';
import { amqpUrl } from './amqp.js';
import type { TestApp } from './app.js';

export interface FeedEvent {
  id: string;
  type: string;
  subject: string;
  data: { user?: { id: string; username: string; display_name: string | null }; import_id?: string };
}

export function ndjson(rows: unknown[]): string {
  return `${rows.map((row) => (typeof row === 'string' ? row : JSON.stringify(row))).join('\n')}\n`;
}

/** POST /v1/imports with this body, as the admin unless told otherwise. */
export function upload(t: TestApp, body: string | Readable, contentType = 'application/x-ndjson', authorization = t.adminBasic) {
  return t.app.inject({ method: 'POST', url: '/v1/imports', headers: { authorization, 'content-type': contentType }, payload: body });
}

/** The user.created events of one import, read from the admin feed. */
export async function importEvents(t: TestApp, importId: string): Promise<FeedEvent[]> {
  const found: FeedEvent[] = [];
  let after: string | null = null;
  for (;;) {
    const query: string = after ? `?limit=1000&after=${after}` : '?limit=1000';
    const response = await t.app.inject({ url: `/v1/events${query}`, headers: { authorization: t.adminBasic } });
    assert.equal(response.statusCode, 200, response.body);
    const page = response.json() as { items: FeedEvent[]; next_after: string | null };
    if (page.items.length === 0) return found;
    found.push(...page.items.filter((event) => event.type === 'user.created' && event.data.import_id === importId));
    after = page.next_after;
  }
}

export function signIn(t: TestApp, username: string, password: string) {
  return t.app.inject({ method: 'POST', url: '/v1/sessions', payload: { username, password } });
}

/** The usernames that start with this prefix, sorted. */
export async function usernamesLike(t: TestApp, prefix: string): Promise<string[]> {
  const rows = await t.services.database.db.selectFrom('users').select('username').where('username', 'like', `${prefix}%`).execute();
  return rows.map((row) => row.username).sort();
}

export async function storedHash(t: TestApp, username: string): Promise<string> {
  const user = await t.services.usersRepository.findByUsername(username);
  assert.ok(user, `${username} exists`);
  return user.password_hash;
}

export async function deleteQueue(queue: string): Promise<void> {
  const connection = await amqp.connect(amqpUrl(), { timeout: 3_000 });
  connection.on('error', () => {});
  try {
    const channel = await connection.createChannel();
    await channel.deleteQueue(queue);
  } finally {
    await connection.close().catch(() => {});
  }
}
