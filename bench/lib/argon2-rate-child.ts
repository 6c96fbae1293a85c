// Run by measureRawRate (argon2-rate.ts) in a process of its own: measures for argv[2] seconds and
// prints the rate as JSON.
import { measureArgon2VerifiesPerSecond } from './argon2-rate.js';

process.stdout.write(JSON.stringify(await measureArgon2VerifiesPerSecond(Number(process.argv[2]))));
