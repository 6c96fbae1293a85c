// The gatehouse command: serve | migrate | users … | keys rotate | relay | import; bin/gatehouse.cjs and
// `npm run dev` start here. The commands live in cli/ (index.ts dispatches, exit.ts has the exit codes).
import { report, run } from './cli/index.js';

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // exit() rather than exitCode: a command that failed half-way (serve after its database opened)
    // may hold handles that would keep the process alive. Standard error is synchronous here.
    process.exit(report(error));
  },
);
