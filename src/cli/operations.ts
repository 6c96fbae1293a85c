// The commands that run or maintain the service: serve, migrate, keys rotate, relay.
import { SETTINGS } from '../config.js';
import { type Command, DATABASE, load, loadSettings, withServices } from './command.js';
import { UsageError } from './exit.js';

export const serveCommand: Command = {
  name: 'serve',
  usage: 'gatehouse serve',
  summary: 'serve the API (applies migrations, creates the first admin)',
  details: 'Runs until SIGTERM or SIGINT, then drains in-flight requests and exits 0 (1 after GATEHOUSE_SHUTDOWN_TIMEOUT_SECONDS).',
  settings: SETTINGS.map((setting) => setting.env),
  run: async () => {
    const config = loadSettings();
    const { serve } = await load.main();
    await serve(config);
  },
};

export const migrateCommand: Command = {
  name: 'migrate',
  usage: 'gatehouse migrate',
  summary: 'apply database migrations and exit',
  details: 'Prints the migrations it applied, or that the database is up to date.',
  settings: DATABASE,
  run: async () => {
    const config = loadSettings();
    const [{ createDatabase }, { migrateToLatest }] = await Promise.all([load.database(), load.migrate()]);
    const database = createDatabase(config);
    try {
      const applied = await migrateToLatest(database.db);
      process.stdout.write(applied.length > 0 ? `applied: ${applied.join(', ')}\n` : 'the database is up to date\n');
    } finally {
      await database.destroy();
    }
  },
};

export const keysRotateCommand: Command = {
  name: 'keys rotate',
  usage: 'gatehouse keys rotate',
  summary: 'add a new token-signing key; the previous one still verifies',
  details: 'Prints the new key id. Instances sign with it after GATEHOUSE_SIGNING_KEY_ACTIVATION_SECONDS.',
  settings: [...DATABASE, 'GATEHOUSE_SIGNING_KEY_ACTIVATION_SECONDS'],
  run: async () => {
    process.stdout.write(`new signing key ${await withServices((s) => s.tokens.rotate())}\n`);
  },
};

export const relayCommand: Command = {
  name: 'relay',
  usage: 'gatehouse relay',
  summary: 'run only the event relay (needs AMQP_URL), until SIGTERM',
  details: 'Publishes pending events to RabbitMQ. Exit 2 when AMQP_URL is unset.',
  settings: [...DATABASE, 'GATEHOUSE_LOG_LEVEL', 'AMQP_URL', 'AMQP_EXCHANGE', 'GATEHOUSE_EVENT_SOURCE'],
  run: runRelay,
};

async function runRelay(): Promise<void> {
  const config = loadSettings();
  if (!config.amqpUrl) throw new UsageError('relay needs AMQP_URL', 'relay');
  const [{ createServices }, { createLogger }] = await Promise.all([load.services(), load.logger()]);
  const logger = createLogger(config);
  const services = await createServices(config, logger);
  const relay = services.relay;
  if (!relay) throw new UsageError('relay needs AMQP_URL', 'relay');
  relay.start();
  logger.info({ exchange: config.amqpExchange }, 'event relay running');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await services.close();
}
