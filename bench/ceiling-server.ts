// The ceiling: a bare Fastify 5 route on this machine, run as its own process by bench/run.ts, so
// every scenario's throughput is read as a share of what Fastify alone serves in the same run.
import Fastify from 'fastify';
import { keepTickEntryShape } from '../bin/tick-shape.cjs';

// As bin/gatehouse.cjs does for gatehouse: without it, about one ceiling process in five built every
// nextTick entry through V8's runtime (bin/tick-shape.cjs says why) and served 20% fewer requests,
// and the ratios would compare which process lost that draw rather than the code.
keepTickEntryShape();

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.on('SIGTERM', () => {
  app.close().then(() => process.exit(0));
});
