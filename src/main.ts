// serve: load everything, listen, and stop cleanly. On SIGTERM or SIGINT /readyz turns 503, and after
// GATEHOUSE_SHUTDOWN_DELAY_SECONDS the server stops accepting connections, lets in-flight requests
// finish, closes the database and exits; if draining takes longer than GATEHOUSE_SHUTDOWN_TIMEOUT_SECONDS
// it exits anyway, with status 1.
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { ensureFirstAdmin } from './bootstrap.js';
import type { Config } from './config.js';
import { createLogger } from './http/logger.js';
import { setThreadPoolPriority, threadPoolSize } from './lib/thread-pool.js';
import { createServices } from './services.js';

export async function serve(config: Readonly<Config>): Promise<FastifyInstance> {
  const logger = createLogger(config);
  const pool = setThreadPoolPriority(config.hashNice);
  if (pool.nice === null) logger.info(`thread pool (password hashing) left at the event loop's priority: ${pool.why}`);
  else logger.info({ nice: pool.nice, threads: pool.threads.length }, 'thread pool (password hashing) runs below the event loop');
  const services = await createServices(config, logger, { threadPoolSize: threadPoolSize() });
  const admin = await ensureFirstAdmin(services);
  if (admin?.generatedPassword) {
    const where =
      config.port === 0 ? '/admin' : `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}/admin`;
    process.stdout.write(
      `\n  gatehouse created the first admin account.\n    username: ${admin.username}\n    password: ${admin.generatedPassword}\n  It is shown only this once: store it now, and change it with PUT /v1/users/me/password.\n  Admin console: ${where}\n\n`,
    );
  } else if (admin) {
    logger.info({ username: admin.username }, 'created the first admin from GATEHOUSE_ADMIN_USERNAME/GATEHOUSE_ADMIN_PASSWORD');
  }
  const app = await buildApp(services, logger);
  app.addHook('onClose', async () => services.close());

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: draining in-flight requests');
    const deadline = setTimeout(
      () => {
        logger.error('shutdown timed out; exiting');
        process.exit(1);
      },
      (config.shutdownDelaySeconds + config.shutdownTimeoutSeconds) * 1000,
    );
    deadline.unref();
    // Readiness fails at once; the listener stays open for GATEHOUSE_SHUTDOWN_DELAY_SECONDS so that
    // a load balancer (or Kubernetes endpoints) stops routing here before connections are refused.
    services.lifecycle.draining = true;
    const drained = new Promise((resolve) => setTimeout(resolve, config.shutdownDelaySeconds * 1000));
    drained
      .then(() => app.close())
      .then(
        () => {
          logger.info('stopped');
          process.exit(0);
        },
        (error) => {
          logger.error({ err: error }, 'error while shutting down');
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));

  await app.listen({ host: config.host, port: config.port });
  if (config.importWorkerEnabled) services.importWorker.start();
  if (services.relay && config.relayEnabled) {
    services.relay.start();
    logger.info({ exchange: config.amqpExchange }, 'event relay started');
  }
  logger.info({ database: services.database.description }, 'gatehouse is serving');
  return app;
}
