// The ordered list of migrations. Add new files here; never edit one that has landed.
import type { Migration } from 'kysely';
import * as createCoreTables from './202611280500_create_core_tables.js';

export const migrations: Record<string, Migration> = {
  '202611280500_create_core_tables': createCoreTables,
};
