// Run by startRawRate (argon2-rate.ts) in a process of its own: for each line on stdin, a number of
// seconds, measures for that long and answers with one line of JSON. Exits when stdin closes.
import { createInterface } from 'node:readline';
import { measureArgon2VerifiesPerSecond } from './argon2-rate.js';

for await (const line of createInterface({ input: process.stdin })) {
  const seconds = Number(line);
  if (!(seconds > 0)) throw new Error(`not a number of seconds: ${JSON.stringify(line)}`);
  process.stdout.write(`${JSON.stringify(await measureArgon2VerifiesPerSecond(seconds))}\n`);
}
