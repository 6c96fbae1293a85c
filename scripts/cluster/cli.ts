// npm run cluster -- up|down|status [--name NAME] [--edge-rate N]: a gatehouse cluster on this
// machine (PostgreSQL primary and replica, three instances, nginx) for trying scale-out by hand and
// for the fault tests in test/cluster.
import { parseArgs } from 'node:util';
import { clusterUrl, down, LOAD_TEST_EDGE_RATE, status, up } from './cluster.js';
import { DEFAULT_NAME } from './state.js';

const USAGE = `usage: npm run cluster -- up|down|status [--name NAME] [--edge-rate N]

  up       start PostgreSQL (primary and streaming replica), 3 gatehouse instances and nginx
  down     stop all of it and remove its directory (also after a failed or interrupted up)
  status   each component, its port and pid, whether it answers, and where reads went

  --name NAME     several clusters may run at once; default "${DEFAULT_NAME}"
  --edge-rate N   nginx's per-client rate limit, requests/s (default ${LOAD_TEST_EDGE_RATE}, for load tests;
                  deploy/nginx/gatehouse.conf ships 50)`;

const print = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: { name: { type: 'string', default: DEFAULT_NAME }, 'edge-rate': { type: 'string' }, help: { type: 'boolean' } },
    allowPositionals: true,
  });
  const [command, ...extra] = positionals;
  if (values.help || !command || extra.length > 0 || !['up', 'down', 'status'].includes(command)) {
    process.stderr.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const name = values.name;

  if (command === 'up') {
    const edgeRate = values['edge-rate'] === undefined ? undefined : Number(values['edge-rate']);
    if (edgeRate !== undefined && !(Number.isInteger(edgeRate) && edgeRate > 0)) {
      process.stderr.write('--edge-rate must be a whole number of requests per second\n');
      return 2;
    }
    const state = await up({ name, ...(edgeRate ? { edgeRatePerSecond: edgeRate } : {}), log: (line) => print(`  ${line}`) });
    print(`\ngatehouse cluster "${state.name}" is up: ${clusterUrl(state)} (nginx in front of 3 instances)`);
    print(`  admin:  ${state.admin.username} / ${state.admin.password}`);
    print(`  try:    curl -u ${state.admin.username}:${state.admin.password} ${clusterUrl(state)}/v1/users/me`);
    print(
      '  limits: raised for load tests (gatehouse 1000000/min per client, nginx edge ' +
        `${state.edgeRatePerSecond}/s); hashing profile "test"`,
    );
    print(`  state:  ${state.dir}/state.json; logs in ${state.dir}/logs and ${state.dir}/pg`);
    print(`  status: npm run cluster -- status${name === 'dev' ? '' : ` --name ${name}`}`);
    print(`  stop:   npm run cluster -- down${name === 'dev' ? '' : ` --name ${name}`}`);
    return 0;
  }

  if (command === 'down') {
    await down(name, (line) => print(`  ${line}`));
    print(`cluster "${name}" is down`);
    return 0;
  }

  const found = await status(name);
  if (!found) {
    print(`no cluster "${name}" (\`npm run cluster -- up${name === 'dev' ? '' : ` --name ${name}`}\` starts one)`);
    return 1;
  }
  print(`cluster "${name}": ${clusterUrl(found.state)}  admin ${found.state.admin.username} / ${found.state.admin.password}`);
  for (const component of found.components) {
    const pid = component.pid === null ? 'not running' : `pid ${component.pid}`;
    print(
      `  ${component.name.padEnd(18)} port ${String(component.port).padEnd(6)} ${pid.padEnd(12)} ${component.answers ? 'answers' : 'DOWN'}`,
    );
    print(`  ${''.padEnd(18)} ${component.detail}`);
  }
  return found.components.every((component) => component.answers) ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
