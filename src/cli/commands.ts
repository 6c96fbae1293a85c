// Every command, in the order the overview lists them, and the groups that hold two-word commands.
import type { Command } from './command.js';
import { importCommand } from './import.js';
import { keysRotateCommand, migrateCommand, relayCommand, serveCommand } from './operations.js';
import { USERS_COMMANDS } from './users.js';

export const COMMANDS: Command[] = [serveCommand, migrateCommand, ...USERS_COMMANDS, keysRotateCommand, relayCommand, importCommand];

/** `gatehouse users …`, `gatehouse keys …`: the group's name and its one-line summary. */
export const GROUPS: Record<string, string> = { users: 'manage user accounts', keys: 'manage token-signing keys' };
