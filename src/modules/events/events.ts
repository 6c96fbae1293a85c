// The event types and their CloudEvents 1.0 form (https://github.com/cloudevents/spec). An event
// never carries a password, a hash or a token: user events carry the public user representation.
import { uuidv7 } from '../../lib/ids.js';
import { nowIso, toIso } from '../../lib/time.js';
import type { Executor } from '../users/users.repository.js';
import type { EventsRepository, NewEvent, StoredEvent } from './events.repository.js';

export const EVENT_TYPES = [
  'user.created',
  'user.updated',
  'user.disabled',
  'user.deleted',
  'user.password_changed',
  'session.created',
  'session.revoked',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  data: unknown;
}

export function toCloudEvent(stored: StoredEvent, source: string): CloudEvent {
  return {
    specversion: '1.0',
    id: stored.id,
    source,
    type: stored.type,
    subject: stored.subject,
    time: toIso(stored.time),
    datacontenttype: 'application/json',
    data: JSON.parse(stored.data),
  };
}

export interface EventRecorder {
  /** Writes an event in the caller's transaction: it exists exactly when the change does. */
  record(trx: Executor, type: EventType, subject: string, data: Record<string, unknown>): Promise<void>;
  /** Several events in one statement (a bulk import's chunk), in the order given. */
  recordMany(trx: Executor, events: { type: EventType; subject: string; data: Record<string, unknown> }[]): Promise<void>;
  /**
   * The event as an outbox row, for a statement of the caller's own that writes it together with
   * its change (a sign-in on PostgreSQL: sessions.repository's recordSignIn); call written() once
   * that statement has run.
   */
  toRow(type: EventType, subject: string, data: Record<string, unknown>): NewEvent;
  /** Several events as outbox rows with one time, as recordMany writes them; then written(). */
  toRows(many: { type: EventType; subject: string; data: Record<string, unknown> }[]): NewEvent[];
  written(): void;
}

export function createEventRecorder(events: EventsRepository, onRecorded: () => void = () => {}): EventRecorder {
  const toRow = (type: EventType, subject: string, data: Record<string, unknown>, time = nowIso()): NewEvent => ({
    id: uuidv7(),
    type,
    subject,
    time,
    data: JSON.stringify(data),
  });
  const toRows = (many: { type: EventType; subject: string; data: Record<string, unknown> }[]): NewEvent[] => {
    const time = nowIso();
    return many.map(({ type, subject, data }) => toRow(type, subject, data, time));
  };
  return {
    async record(trx, type, subject, data) {
      await events.append(trx, toRow(type, subject, data));
      onRecorded();
    },
    async recordMany(trx, many) {
      if (many.length === 0) return;
      await events.append(trx, ...toRows(many));
      onRecorded();
    },
    toRow,
    toRows,
    written() {
      onRecorded();
    },
  };
}
