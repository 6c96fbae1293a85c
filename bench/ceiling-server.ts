// The ceiling: a bare Fastify 5 route on this machine, run as its own process by bench/run.ts, so
// every scenario's throughput is read as a share of what Fastify alone serves in the same run.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.on('SIGTERM', () => {
  app.close().then(() => process.exit(0));
});
