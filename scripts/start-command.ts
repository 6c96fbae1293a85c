// How `npm start` runs gatehouse, read from package.json's start script
// (`NAME=value … exec node --flag … bin/gatehouse.cjs serve`): the environment and node flags that node
// and glibc read before any code runs (bin/launch.js says why). The bench and the cluster on one machine
// start their instances with them, so that they run what `npm start` and the image run. `exec` makes
// the shell npm runs the script in become node, so that the SIGTERM npm passes on reaches the server.
import { readFileSync } from 'node:fs';

const PACKAGE_JSON = new URL('../package.json', import.meta.url);

export function startCommand(): { env: Record<string, string>; nodeArgs: string[] } {
  const start = (JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { scripts: { start: string } }).scripts.start;
  const words = start.trim().split(/\s+/);
  const env: Record<string, string> = {};
  let i = 0;
  for (; words[i]?.includes('='); i += 1) {
    const [name, value] = (words[i] as string).split(/=(.*)/s);
    env[name as string] = value as string;
  }
  if (words[i] === 'exec') i += 1;
  if (words[i] !== 'node') throw new Error(`package.json's start script does not run node: ${start}`);
  const nodeArgs: string[] = [];
  for (i += 1; words[i]?.startsWith('--'); i += 1) nodeArgs.push(words[i] as string);
  if (words.slice(i).join(' ') !== 'bin/gatehouse.cjs serve') throw new Error(`package.json's start script does not serve: ${start}`);
  return { env, nodeArgs };
}
