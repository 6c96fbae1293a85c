// Parses the command line, runs the command and turns what went wrong into one line on standard
// error and a stable exit code (exit.ts): never a stack unless the error is a bug.
import { parseArgs } from 'node:util';
import { ConfigError } from '../config.js';
import { isDatabaseUnavailable } from '../db/errors.js';
import { AppError } from '../http/errors.js';
import { type Command, currentSettings, type Values } from './command.js';
import { COMMANDS, GROUPS } from './commands.js';
import { CommandFailure, EXIT, EXIT_BY_PROBLEM, UsageError } from './exit.js';
import { commandHelp, groupHelp, overview } from './help.js';

/** Runs the command named by `argv` (the arguments after the program's name); resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  const [first, ...words] = argv;
  if (first === undefined) {
    process.stderr.write(overview());
    return EXIT.usage;
  }
  if (first === 'help' || first === '--help' || first === '-h') {
    process.stdout.write(helpFor(first === 'help' ? words : []));
    return EXIT.ok;
  }
  const found = findCommand(argv) as NonNullable<ReturnType<typeof findCommand>>;
  if ('group' in found) {
    const [sub] = found.rest;
    if (sub === '--help' || sub === '-h' || sub === 'help') {
      process.stdout.write(groupHelp(found.group));
      return EXIT.ok;
    }
    const names = COMMANDS.filter((one) => one.name.startsWith(`${found.group} `)).map((one) => one.name.split(' ')[1]);
    if (sub === undefined) throw new UsageError(`${found.group} needs a command: ${names.join(', ')}`, found.group);
    throw new UsageError(`unknown ${found.group} command: ${sub}`, found.group);
  }
  const { command, rest } = found;
  const options = Object.fromEntries(Object.entries(command.options ?? {}).map(([name, option]) => [name, { type: option.type }]));
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    }) as { values: Values; positionals: string[] };
  } catch (error) {
    throw new UsageError(parseArgsMessage(error), command.name);
  }
  if (parsed.values.help) {
    process.stdout.write(commandHelp(command));
    return EXIT.ok;
  }
  const extra = parsed.positionals.slice(command.positionals ?? 0);
  if (extra.length > 0) throw new UsageError(`unexpected argument: ${extra[0]}`, command.name);
  await command.run(parsed.values, parsed.positionals);
  return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
}

function findCommand(words: string[]): { command: Command; rest: string[] } | { group: string; rest: string[] } | null {
  const [first, second, ...rest] = words;
  if (first === undefined) return null;
  if (first in GROUPS) {
    const command = COMMANDS.find((one) => one.name === `${first} ${second}`);
    if (command) return { command, rest };
    return { group: first, rest: second === undefined ? [] : [second, ...rest] };
  }
  const command = COMMANDS.find((one) => one.name === first);
  if (!command) throw new UsageError(`unknown command: ${first}`);
  return { command, rest: second === undefined ? rest : [second, ...rest] };
}

/** The help asked for by `gatehouse help [COMMAND…]`. */
function helpFor(words: string[]): string {
  const found = findCommand(words);
  if (!found) return overview();
  if ('command' in found) return commandHelp(found.command);
  if (found.rest.length > 0) throw new UsageError(`unknown ${found.group} command: ${found.rest[0]}`, found.group);
  return groupHelp(found.group);
}

/** node:util parseArgs's message, shortened to what the operator typed wrong. */
function parseArgsMessage(error: unknown): string {
  const e = error as { code?: string; message?: string };
  const quoted = /'([^']+)'/.exec(e.message ?? '')?.[1] ?? '';
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option: ${quoted}`;
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && /argument missing/.test(e.message ?? ''))
    return `${quoted.split(' ')[0]} needs a value`;
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return `${quoted.split(' ')[0]} takes no value`;
  return (e.message ?? String(error)).split('\n')[0] ?? '';
}

/** One line on standard error and the exit code; a stack only for errors that are bugs. */
export function report(error: unknown): number {
  const say = (message: string) => process.stderr.write(`gatehouse: ${message}\n`);
  if (error instanceof UsageError) {
    say(`${error.message} (see 'gatehouse ${error.command ? `${error.command} ` : ''}--help')`);
    return EXIT.usage;
  }
  if (error instanceof CommandFailure) {
    say(error.message);
    return error.exitCode;
  }
  if (error instanceof ConfigError) {
    say(`invalid configuration: ${error.problems.join('; ')}`);
    return EXIT.failed;
  }
  if (error instanceof AppError) {
    const fields = error.options.errors?.map((field) => `${field.field} ${field.message}`).join('; ');
    say(fields ? `${error.detail} (${fields})` : error.detail);
    return EXIT_BY_PROBLEM[error.code] ?? EXIT.failed;
  }
  const e = error as { message?: string; code?: string; syscall?: string; stack?: string };
  if (cannotReachDatabase(error)) {
    say(`cannot reach ${describeDatabase()}: ${e.message || e.code}`);
    return EXIT.unavailable;
  }
  if (typeof e?.syscall === 'string') {
    // An operating-system error (a port in use, a directory that cannot be created): its message says it all.
    say(e.message ?? String(error));
    return EXIT.failed;
  }
  say(`unexpected error: ${e?.message ?? String(error)}`);
  if (e?.stack) process.stderr.write(`${e.stack}\n`);
  return EXIT.failed;
}

function cannotReachDatabase(error: unknown): boolean {
  const code = String((error as { code?: unknown })?.code ?? '');
  // Beyond the server's list: a refused login (28xxx), a database that does not exist, an unopenable file.
  return isDatabaseUnavailable(error) || /^28/.test(code) || code === '3D000' || code === 'SQLITE_CANTOPEN';
}

/** The database, described without credentials. */
function describeDatabase(): string {
  const url = currentSettings()?.databaseUrl;
  if (!url) return 'the database';
  if (url.startsWith('sqlite:')) return url;
  try {
    const parsed = new URL(url);
    return `postgres://${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`;
  } catch {
    return 'the database';
  }
}
