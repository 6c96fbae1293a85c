// Remembers, for a fraction of a second, the serialized answer to an admin's `GET /v1/users` page.
// A dashboard or a sync job that polls the list sends the same query many times a second, and each
// used to read and serialize the same rows again: on SQLite the read alone costs about five bare
// requests (bench S2, bench/RESULTS.md).
//
// How stale a page can be is bounded the same three ways as the authentication cache
// (caller-cache.ts), and one more:
// - every page lives at most `ttlMilliseconds` (GATEHOUSE_USER_LIST_CACHE_MS, at most 1 s), so any
//   change, even one made straight in the database, is listed within that time;
// - any change to any user made through this instance (the same points that call
//   CallerCache.changed, and an import's chunk) empties the cache once it has committed, and is
//   announced over Redis, so the other instances empty theirs when the message arrives;
// - a read that started before such a change is not stored when it finishes;
// - a request that must see particular writes (with read replicas: it sends Gatehouse-Consistency,
//   or its caller wrote recently) is not answered from the cache, and does not fill it.
// Requests that miss while the same page is being read wait for that read instead of starting
// their own: under load every connection missed at each expiry, and on PostgreSQL each read and
// serialized the page again (RESULTS, seventeenth round). clear() forgets the reads in flight, so a
// request that arrives after a change reads again.
// The route keeps each page as the bytes it sends (a Buffer): a cached string was encoded as UTF-8
// into a new buffer, with the headers' text, on every answer (a few per cent of S2's CPU time:
// RESULTS, nineteenth round); a Buffer goes to the socket as it is.
import { currentReadMinimum } from '../../db/replicas.js';

/** Distinct queries kept; a page is at most 100 users (a few tens of kB). */
const MAX_PAGES = 200;

interface Page<Body> {
  body: Body;
  /** Date.now() after which the page is not used. */
  until: number;
}

export interface UserListCache<Body = Buffer> {
  /** The page for `key` if it may be answered from the cache now, without waiting; else undefined. */
  cached(key: string): Body | undefined;
  /** The page for `key` (the request's URL), from the cache or from `load`. */
  page(key: string, load: () => Promise<Body>): Promise<Body>;
  /** Forgets every page: a user changed, here or on another instance. */
  clear(): void;
  readonly size: number;
}

export function createUserListCache<Body = Buffer>(ttlMilliseconds: number): UserListCache<Body> {
  const pages = new Map<string, Page<Body>>();
  // Bumped by every clear(); a read stores its page only if no clear came while it ran.
  let generation = 0;
  // Pages being read, by key.
  const reads = new Map<string, Promise<Body>>();

  // Off, or a read that must see particular writes (read replicas).
  const unusable = () => ttlMilliseconds <= 0 || currentReadMinimum() !== null;

  /** The stored page for `key` while it is young enough; an older one is dropped. */
  function fresh(key: string): Body | undefined {
    const page = pages.get(key);
    if (!page) return undefined;
    if (page.until > Date.now()) return page.body;
    pages.delete(key);
    return undefined;
  }

  return {
    cached: (key) => (unusable() ? undefined : fresh(key)),
    async page(key, load) {
      if (unusable()) return load();
      const hit = fresh(key);
      if (hit !== undefined) return hit;
      const reading = reads.get(key);
      if (reading) return reading;
      const startedIn = generation;
      const read = load().then((body) => {
        if (startedIn === generation) {
          if (pages.size >= MAX_PAGES) {
            // Maps iterate in insertion order: the first key is the oldest page.
            const oldest = pages.keys().next();
            if (!oldest.done) pages.delete(oldest.value);
          }
          pages.set(key, { body, until: Date.now() + ttlMilliseconds });
        }
        return body;
      });
      reads.set(key, read);
      const done = () => {
        if (reads.get(key) === read) reads.delete(key);
      };
      read.then(done, done);
      return read;
    },
    clear() {
      generation += 1;
      pages.clear();
      reads.clear();
    },
    get size() {
      return pages.size;
    },
  };
}
