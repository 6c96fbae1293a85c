// The ordered list of migrations. Add new files here; never edit one that has landed.
import type { Migration } from 'kysely';
import * as createCoreTables from './202611280500_create_core_tables.js';
import * as createOutboxEvents from './202611280600_create_outbox_events.js';
import * as createImports from './202611280700_create_imports.js';
import * as createIdempotencyKeys from './202611281000_create_idempotency_keys.js';

export const migrations: Record<string, Migration> = {
  '202611280500_create_core_tables': createCoreTables,
  '202611280600_create_outbox_events': createOutboxEvents,
  '202611280700_create_imports': createImports,
  '202611281000_create_idempotency_keys': createIdempotencyKeys,
};
