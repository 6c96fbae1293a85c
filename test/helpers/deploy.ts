// Shared by the deploy suites, which check deploy/ offline (no Docker engine or cluster here): the
// repository's paths, YAML reading, the parsed compose.yaml and Dockerfile, and a spare port.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { parseAllDocuments } from 'yaml';
import { SETTINGS } from '../../src/config.js';

export { freePort } from '../../scripts/cluster/system.js';

export const run = promisify(execFile);
export const REPO = new URL('../..', import.meta.url).pathname;
export const DEPLOY = join(REPO, 'deploy');
export const SETTING_NAMES = new Set(SETTINGS.map((setting) => setting.env));

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML is checked field by field by the suites
export type Yaml = any;

export function read(path: string): string {
  return readFileSync(join(REPO, path), 'utf8');
}

/** Every document of a YAML file; a syntax error fails with the file's name. */
export function parseYaml(path: string): Yaml[] {
  return parseAllDocuments(read(path), { merge: true }).map((document) => {
    assert.deepEqual(document.errors, [], `${path} is not valid YAML`);
    return document.toJS();
  });
}

export const [compose] = parseYaml('deploy/compose.yaml');

export const DOCKERFILE = read('deploy/Dockerfile');
export const dockerfile = DockerfileParser.parse(DOCKERFILE);
export const instructions = dockerfile.getInstructions();
// The final stage starts at the last FROM.
export const finalStageStart = instructions.map((instruction) => instruction.getKeyword()).lastIndexOf('FROM');
const finalStage = instructions.slice(finalStageStart);

export function args(instruction: Instruction): string[] {
  return instruction.getArguments().map((argument) => argument.getValue());
}

export function finalStageOnly(keyword: string): Instruction[] {
  return finalStage.filter((instruction) => instruction.getKeyword() === keyword);
}

export function dockerfileUser(): string {
  const users = finalStageOnly('USER');
  assert.equal(users.length, 1, 'one USER in the final stage');
  return args(users[0] as Instruction)[0] as string;
}

export function execForm(instruction: Instruction): string[] {
  const content = instruction.getArgumentsContent() ?? '';
  return JSON.parse(content.slice(content.indexOf('[')));
}
