// The help texts: the overview, a group's commands, and a command's options and the settings it
// reads, taken from the settings schema in config.ts so that the help cannot drift from it.
import { SETTINGS } from '../config.js';
import type { Command } from './command.js';
import { COMMANDS, GROUPS } from './commands.js';
import { EXIT_HELP } from './exit.js';

export function commandHelp(command: Command): string {
  const options = Object.entries(command.options ?? {}).map(([name, option]) => [
    `--${name}${option.value ? ` ${option.value}` : ''}`,
    option.doc,
  ]);
  options.push(['-h, --help', 'show this help']);
  const settings = settingsOf(command).map((setting) => [
    setting.env,
    // The docs are the README's Markdown: drop the code marks.
    `${setting.doc}${setting.default ? ` Default: ${setting.default}.` : ''}`.replaceAll('`', ''),
  ]);
  return [
    `Usage: ${command.usage}`,
    '',
    `${command.summary[0]?.toUpperCase()}${command.summary.slice(1)}.`,
    ...(command.details ? [command.details] : []),
    '',
    'Options:',
    columns(options),
    '',
    'Settings it reads (environment variables; every setting is validated at start):',
    columns(settings),
    '',
    EXIT_HELP,
    '',
  ].join('\n');
}

function settingsOf(command: Command) {
  return command.settings.flatMap((name) => {
    const matching = name.endsWith('*')
      ? SETTINGS.filter((setting) => setting.env.startsWith(name.slice(0, -1)))
      : SETTINGS.filter((setting) => setting.env === name);
    // A renamed setting must not silently vanish from the help: the help test runs every command.
    if (matching.length === 0) throw new Error(`the help of ${command.name} names ${name}, which is not a setting`);
    return matching;
  });
}

export function groupHelp(group: string): string {
  const members = COMMANDS.filter((command) => command.name.startsWith(`${group} `));
  return [
    `Usage: gatehouse ${group} <command> [options]`,
    '',
    `${GROUPS[group]?.[0]?.toUpperCase()}${GROUPS[group]?.slice(1)}:`,
    columns(members.map((command) => [command.usage.replace('gatehouse ', ''), command.summary])),
    '',
    `Run 'gatehouse ${group} <command> --help' for a command's options and the settings it reads.`,
    '',
    EXIT_HELP,
    '',
  ].join('\n');
}

export function overview(): string {
  return [
    'gatehouse: user management and authentication over HTTP',
    '',
    'Usage: gatehouse <command> [options]',
    '',
    'Commands:',
    columns([...COMMANDS.map((command) => [command.name, command.summary]), ['help [COMMAND]', "this help, or a command's"]]),
    '',
    "Run 'gatehouse <command> --help' for its options and the environment settings it reads",
    '(DATABASE_URL above all: the commands use the same database as the server).',
    '',
    EXIT_HELP,
    '',
  ].join('\n');
}

/** Two aligned columns, indented. */
function columns(rows: string[][]): string {
  const width = Math.max(0, ...rows.map(([left]) => (left ?? '').length));
  return rows.map(([left, right]) => `  ${(left ?? '').padEnd(width)}  ${right ?? ''}`.trimEnd()).join('\n');
}
