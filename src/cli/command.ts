// What a command is, and what the commands share: the lazy loaders, the settings, the services and
// the argument helpers. Only types and light modules are imported here, so that --help stays fast.
import { type Config, loadConfig } from '../config.js';
import type { Services } from '../services.js';
import { UsageError } from './exit.js';

export type Values = Record<string, string | boolean | undefined>;

export interface Option {
  type: 'string' | 'boolean';
  /** The value's placeholder in help, for string options. */
  value?: string;
  doc: string;
}

export interface Command {
  name: string;
  usage: string;
  summary: string;
  /** More lines of help: what it prints, its own exit codes. */
  details?: string;
  options?: Record<string, Option>;
  /** Positional arguments it takes at most. */
  positionals?: number;
  /** Environment settings it reads, by name; `DATABASE_*` means every setting with that prefix. */
  settings: string[];
  run(values: Values, positionals: string[]): Promise<void>;
}

export const DATABASE = ['DATABASE_*'];
export const HASHING = ['GATEHOUSE_PASSWORD_HASH_PROFILE', 'GATEHOUSE_HASH_CONCURRENCY'];

// The server, the database drivers and the services load only when a command needs them, so that
// --help and usage errors answer at once.
export const load = {
  main: () => import('../main.js'),
  database: () => import('../db/database.js'),
  migrate: () => import('../db/migrate.js'),
  logger: () => import('../http/logger.js'),
  services: () => import('../services.js'),
  usersView: () => import('../modules/users/users.view.js'),
};

let loadedConfig: Readonly<Config> | null = null;

/** The settings, loaded and validated; remembered so that an error report can name the database. */
export function loadSettings(): Readonly<Config> {
  loadedConfig = loadConfig();
  return loadedConfig;
}

/** The settings the command loaded, or null when it failed before loading them. */
export function currentSettings(): Readonly<Config> | null {
  return loadedConfig;
}

export function required(values: Values, name: string, command: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`${command} needs --${name}`, command);
  return value;
}

export function requiredPositional(positionals: string[], name: string, command: string): string {
  const value = positionals[0];
  if (!value) throw new UsageError(`${command} needs a ${name}`, command);
  return value;
}

export async function readPassword(given: string | boolean | undefined, command: string): Promise<string> {
  if (typeof given === 'string') return given;
  if (process.stdin.isTTY) process.stderr.write('password: ');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  if (line === '') throw new UsageError('no password given (use --password or standard input)', command);
  return line;
}

export async function withServices<T>(work: (services: Services) => Promise<T>): Promise<T> {
  const config = loadSettings();
  const [{ createServices }, { createLogger }] = await Promise.all([load.services(), load.logger()]);
  const services = await createServices(config, createLogger({ logLevel: 'warn' }));
  try {
    return await work(services);
  } finally {
    await services.close();
  }
}
