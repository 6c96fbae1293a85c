// The import worker that runs in every instance (and alone in `gatehouse import`). It takes chunks
// from the RabbitMQ work queue when there is one, and from the database queue always: a chunk that
// no worker started within its reservation (the broker lost the message or was down), or whose
// worker died (its lease ran out), is taken there. A worker processes up to `concurrency` chunks at
// once (GATEHOUSE_IMPORT_CONCURRENCY): a chunk of rows with existing hashes is a few database round
// trips, so one at a time leaves the database and the process waiting on each other.
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
  concurrency?: number;
}): ImportWorker {
  const pollMilliseconds = options.pollMilliseconds ?? 1_000;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  let running = false;
  let loops: Promise<void>[] = [];
  const wakers = new Set<() => void>();

  /** One lane: claims and processes chunks until none is left or `keepGoing` says stop. */
  async function drainLane(keepGoing: () => boolean): Promise<number> {
    let processed = 0;
    for (;;) {
      if (!keepGoing()) return processed;
      const next = await options.imports.claimNext();
      if (!next) return processed;
      if (await options.imports.processChunk(next.jobId, next.seq)) processed += 1;
    }
  }

  /** Stops between chunks once `keepGoing` says so (serve's shutdown): the rest is other workers' work. */
  async function drain(keepGoing: () => boolean = () => true): Promise<number> {
    const lanes = await Promise.all(Array.from({ length: concurrency }, () => drainLane(keepGoing)));
    return lanes.reduce((sum, processed) => sum + processed, 0);
  }

  async function run(): Promise<void> {
    while (running) {
      try {
        await drainLane(() => running);
      } catch (error) {
        options.logger.warn({ err: error }, 'import worker: a chunk failed; it is retried when its lease ends');
      }
      if (!running) return;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          wakers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, pollMilliseconds);
        wakers.add(wake);
      });
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      loops = Array.from({ length: concurrency }, () => run());
      options.workQueue
        ?.consume(async (jobId, seq) => {
          if (await options.imports.claim(jobId, seq)) await options.imports.processChunk(jobId, seq);
        }, concurrency)
        .catch((error) => options.logger.warn({ err: error }, 'import worker: work queue consumer stopped'));
    },
    async stop() {
      running = false;
      for (const wake of [...wakers]) wake();
      await options.workQueue?.close();
      await Promise.all(loops.map((loop) => loop.catch(() => {})));
    },
    drain,
  };
}
