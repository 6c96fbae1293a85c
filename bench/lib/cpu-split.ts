// Where the machine's CPU time went during one scenario (Linux /proc): the server's hashing threads
// (node's thread pool, the threads `serve` runs at a raised nice value), its event loop (the thread
// whose id is the process id), its other threads (V8's), everything else on the machine (the
// runner and its load generator, the database), and idle. S3 is read against the raw argon2id rate
// measured with the hashes alone on the cores, so its share is about the hashing threads' share of
// the machine, and the rest of this split is where the difference went (RESULTS, thirteenth round).
import { readdirSync, readFileSync } from 'node:fs';

export interface ThreadTimes {
  /** Clock ticks of user and system time. */
  ticks: number;
  nice: number;
}

export interface CpuSnapshot {
  /** All CPUs' ticks, idle included, from /proc/stat. */
  machineTicks: number;
  idleTicks: number;
  threads: Map<number, ThreadTimes>;
}

export interface CpuSplit {
  /** Shares of the machine's CPU time over the interval, 0–1. */
  hashing: number;
  eventLoop: number;
  otherThreads: number;
  elsewhere: number;
  idle: number;
  /** The event loop's CPU time over the interval, in seconds. */
  eventLoopSeconds: number;
}

/** The `cpu` line of /proc/stat: all ticks (user to steal) and the idle ones (idle, iowait). */
export function parseProcStat(text: string): { machineTicks: number; idleTicks: number } {
  const line = text.split('\n').find((each) => each.startsWith('cpu '));
  if (!line) throw new Error('/proc/stat has no cpu line');
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  const counted = [user, nice, system, idle, iowait, irq, softirq, steal].map((each) => each ?? 0);
  return { machineTicks: counted.reduce((sum, each) => sum + each, 0), idleTicks: (idle ?? 0) + (iowait ?? 0) };
}

/** One /proc/<pid>/task/<tid>/stat line. The name is in parentheses and may hold spaces and ')'. */
export function parseThreadStat(text: string): ThreadTimes {
  const fields = text
    .slice(text.lastIndexOf(')') + 2)
    .trim()
    .split(' ');
  // After the name: state is field 3 of proc(5), so field n is fields[n - 3].
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  const nice = Number(fields[19 - 3]);
  if (![utime, stime, nice].every(Number.isFinite)) throw new Error(`not a stat line: ${text.slice(0, 80)}`);
  return { ticks: utime + stime, nice };
}

/** Each thread of process `pid` by thread id, from /proc/<pid>/task/<tid>/stat. */
export function threadTimes(pid: number): Map<number, ThreadTimes> {
  const threads = new Map<number, ThreadTimes>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`process ${pid} is not running (it exited?)`);
    throw error;
  }
  for (const tid of tids) {
    try {
      threads.set(Number(tid), parseThreadStat(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')));
    } catch {
      // The thread ended between the listing and the read: its time is lost to both snapshots.
    }
  }
  return threads;
}

export function snapshot(pid: number): CpuSnapshot {
  return { ...parseProcStat(readFileSync('/proc/stat', 'utf8')), threads: threadTimes(pid) };
}

/**
 * The split of process `pid` over one or more intervals (S3's slices of load), each between two
 * snapshots, as one; ticks per second from `ticksPerSecond`.
 */
export function cpuSplit(pid: number, intervals: readonly (readonly [CpuSnapshot, CpuSnapshot])[], ticksPerSecond = 100): CpuSplit {
  let machine = 0;
  let idle = 0;
  let hashing = 0;
  let eventLoop = 0;
  let otherThreads = 0;
  for (const [before, after] of intervals) {
    machine += after.machineTicks - before.machineTicks;
    idle += after.idleTicks - before.idleTicks;
    for (const [tid, now] of after.threads) {
      const used = now.ticks - (before.threads.get(tid)?.ticks ?? 0);
      if (tid === pid) eventLoop += used;
      else if (now.nice > 0) hashing += used;
      else otherThreads += used;
    }
  }
  if (machine <= 0) throw new Error('no machine time passed between the snapshots');
  const elsewhere = Math.max(0, machine - idle - hashing - eventLoop - otherThreads);
  return {
    hashing: hashing / machine,
    eventLoop: eventLoop / machine,
    otherThreads: otherThreads / machine,
    elsewhere: elsewhere / machine,
    idle: idle / machine,
    eventLoopSeconds: eventLoop / ticksPerSecond,
  };
}
