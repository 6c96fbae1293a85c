// How long recent failed sign-ins took, so that a blocked attempt (429) can take as long as one.
// A blocked attempt waits the time of one of the last failures, picked at random, rather than their
// average: failure times are skewed (a slow lookup or a busy hashing pool makes a long tail), so a
// wait of the average left the 429s' median above the 401s' by the tail's weight (up to 4.9 ms in
// bench signin-timing on a slow machine) and their tail shorter (bench/RESULTS.md, twelfth round).
// Drawn from the recent times, the 429s' times spread as the 401s' do, median and tail alike.
export class RecentFailureTimes {
  private readonly times: number[] = [];
  private next = 0;

  constructor(private readonly size = 128) {}

  add(milliseconds: number): void {
    if (!(milliseconds >= 0)) return;
    if (this.times.length < this.size) this.times.push(milliseconds);
    else this.times[this.next] = milliseconds;
    this.next = (this.next + 1) % this.size;
  }

  /** One of the recent times, picked at random; null before any failure. */
  pick(random: () => number = Math.random): number | null {
    if (this.times.length === 0) return null;
    return this.times[Math.min(this.times.length - 1, Math.floor(random() * this.times.length))] as number;
  }
}
