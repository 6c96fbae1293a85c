// The import worker that runs in every instance (and alone in `gatehouse import`). It takes chunks
// from the RabbitMQ work queue when there is one, and from the database queue always: a chunk that
// no worker started within its reservation (the broker lost the message or was down), or whose
// worker died (its lease ran out), is taken there. One chunk at a time per worker.
import type { ImportsService } from './imports.service.js';
import type { WorkQueue } from './work-queue.js';

export interface ImportWorker {
  start(): void;
  stop(): Promise<void>;
  /** Processes chunks from the database queue until none is left; how many (tests, the CLI). */
  drain(): Promise<number>;
}

export function createImportWorker(options: {
  imports: ImportsService;
  workQueue: WorkQueue | null;
  logger: { warn(o: object, m: string): void };
  pollMilliseconds?: number;
}): ImportWorker {
  const pollMilliseconds = options.pollMilliseconds ?? 1_000;
  let running = false;
  let loop: Promise<void> | null = null;
  let wake: (() => void) | null = null;

  /** Stops between chunks once `keepGoing` says so (serve's shutdown): the rest is other workers' work. */
  async function drain(keepGoing: () => boolean = () => true): Promise<number> {
    let processed = 0;
    for (;;) {
      if (!keepGoing()) return processed;
      const next = await options.imports.claimNext();
      if (!next) return processed;
      if (await options.imports.processChunk(next.jobId, next.seq)) processed += 1;
    }
  }

  async function run(): Promise<void> {
    while (running) {
      try {
        await drain(() => running);
      } catch (error) {
        options.logger.warn({ err: error }, 'import worker: a chunk failed; it is retried when its lease ends');
      }
      if (!running) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMilliseconds);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop = run();
      options.workQueue
        ?.consume(async (jobId, seq) => {
          if (await options.imports.claim(jobId, seq)) await options.imports.processChunk(jobId, seq);
        })
        .catch((error) => options.logger.warn({ err: error }, 'import worker: work queue consumer stopped'));
    },
    async stop() {
      running = false;
      wake?.();
      await options.workQueue?.close();
      await loop?.catch(() => {});
    },
    drain,
  };
}
