// Access tokens: short-lived JWTs signed with Ed25519 (EdDSA, RFC 8037) through jose. The signing
// keys live in the database so every instance signs and verifies with the same set; the newest
// unretired key signs, every unretired key verifies and is published in the JWKS. The private half
// never leaves this module. A new key is published (JWKS, every instance's verifier) before it
// signs: it starts signing only after the activation delay, longer than the reload interval, so
// no instance ever meets a token whose key it has not loaded yet. An unknown `kid` also makes an
// instance reload its keys, at most every two seconds.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { calculateJwkThumbprint, type JWK, errors as joseErrors, jwtVerify } from 'jose';
import type { Kysely } from 'kysely';
import type { Config } from '../../config.js';
import type { Database } from '../../db/schema.js';
import { nowIso } from '../../lib/time.js';

const ALGORITHM = 'EdDSA';
const RELOAD_INTERVAL_MS = 60_000;
const UNKNOWN_KID_RELOAD_MIN_MS = 2_000;
// Verified tokens remembered per instance: an Ed25519 verify was the largest single cost of a Bearer
// request. Bounded in count; a full table is simply emptied (tokens live minutes, so it refills).
const VERIFIED_MAX_ENTRIES = 10_000;

interface LoadedKey {
  kid: string;
  publicJwk: JWK;
  publicKey: KeyObject;
  privateKey: KeyObject;
  createdAt: string;
}

export interface AccessTokenClaims {
  userId: string;
  sessionId: string;
}

export interface TokenIssuer {
  /** Loads the keys, creating the first one when the database has none. */
  init(): Promise<void>;
  signAccessToken(claims: AccessTokenClaims): Promise<string>;
  /** The claims of a valid, unexpired token from this issuer; null for anything else. */
  verifyAccessToken(token: string): Promise<AccessTokenClaims | null>;
  /**
   * What verifyAccessToken would answer for a token verified before, without waiting: its claims,
   * or null once it has expired; undefined for a token this instance has not verified.
   */
  verifiedClaims(token: string): AccessTokenClaims | null | undefined;
  jwks(): Promise<{ keys: (JWK & { kid: string; kty: string })[] }>;
  /** Adds a new signing key (it signs after the activation delay) and retires all but the new and the previous one. */
  rotate(): Promise<string>;
}

function base64urlJson(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

async function newKeyRow() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(jwk);
  return {
    kid,
    algorithm: ALGORITHM,
    public_jwk: JSON.stringify({ ...jwk, kid, alg: ALGORITHM, use: 'sig' }),
    private_key_pem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    created_at: nowIso(),
    retired_at: null,
  };
}

export function createTokenIssuer(
  db: Kysely<Database>,
  config: Pick<Config, 'issuer' | 'audience' | 'accessTokenTtlSeconds' | 'signingKeyActivationSeconds'>,
): TokenIssuer {
  let keys: LoadedKey[] = [];
  let loadedAt = 0;
  let loading: Promise<void> | null = null;
  // Token text -> its claims and `exp`, for tokens whose signature and claims jose has checked
  // against the keys loaded now. Only the verification is remembered here, never the session: that
  // is the authentication cache's (caller-cache.ts), with its own bound. Expiry is checked on each hit, as
  // jose does (expired once `exp` <= now in whole seconds), and the table is emptied whenever the
  // keys are (re)loaded, so a retired key stops being honoured exactly when it would without it.
  const verified = new Map<string, AccessTokenClaims & { exp: number }>();
  let keysGeneration = 0;

  async function load(): Promise<void> {
    const rows = await db.selectFrom('signing_keys').selectAll().where('retired_at', 'is', null).orderBy('created_at', 'desc').execute();
    keys = rows.map((row) => {
      const publicJwk = JSON.parse(row.public_jwk) as JWK;
      return {
        kid: row.kid,
        publicJwk,
        publicKey: createPublicKey({ key: publicJwk as import('node:crypto').JsonWebKey, format: 'jwk' }),
        privateKey: createPrivateKey(row.private_key_pem),
        createdAt: new Date(row.created_at).toISOString(),
      };
    });
    loadedAt = Date.now();
    keysGeneration += 1;
    verified.clear();
  }

  function verifiedClaims(token: string): AccessTokenClaims | null | undefined {
    const known = verified.get(token);
    if (!known) return undefined;
    if (known.exp > Math.floor(Date.now() / 1000)) return { userId: known.userId, sessionId: known.sessionId };
    verified.delete(token);
    return null;
  }

  function reload(): Promise<void> {
    loading ??= load().finally(() => {
      loading = null;
    });
    return loading;
  }

  async function current(): Promise<LoadedKey> {
    if (Date.now() - loadedAt > RELOAD_INTERVAL_MS) await reload();
    // Newest first: the newest key old enough to be known everywhere; else the oldest there is.
    const activeBefore = Date.now() - config.signingKeyActivationSeconds * 1000;
    const key = keys.find((k) => Date.parse(k.createdAt) <= activeBefore) ?? keys[keys.length - 1];
    if (!key) throw new Error('no signing key is loaded');
    return key;
  }

  return {
    async init() {
      await load();
      if (keys.length === 0) {
        // Two instances starting at once may both add a key; both stay valid, the newest signs.
        await db
          .insertInto('signing_keys')
          .values(await newKeyRow())
          .execute();
        await load();
      }
    },

    // The JWS compact serialization (RFC 7515 7.1) signed with node:crypto at once: jose signs
    // through WebCrypto, whose job cost the main thread several times as much CPU per sign-in, and
    // the main thread's CPU is what the hashing lanes lose (bench S3). jose still verifies.
    async signAccessToken({ userId, sessionId }) {
      const key = await current();
      const issuedAt = Math.floor(Date.now() / 1000);
      const header = base64urlJson({ alg: ALGORITHM, kid: key.kid, typ: 'at+jwt' });
      const payload = base64urlJson({
        sid: sessionId,
        sub: userId,
        iss: config.issuer,
        aud: config.audience,
        iat: issuedAt,
        exp: issuedAt + config.accessTokenTtlSeconds,
      });
      const signingInput = `${header}.${payload}`;
      return `${signingInput}.${sign(null, Buffer.from(signingInput), key.privateKey).toString('base64url')}`;
    },

    verifiedClaims,

    async verifyAccessToken(token) {
      const known = verifiedClaims(token);
      if (known !== undefined) return known;
      const generation = keysGeneration;
      try {
        const { payload } = await jwtVerify(
          token,
          async (header) => {
            let key = keys.find((k) => k.kid === header.kid);
            if (!key && Date.now() - loadedAt > UNKNOWN_KID_RELOAD_MIN_MS) {
              await reload();
              key = keys.find((k) => k.kid === header.kid);
            }
            if (!key) throw new joseErrors.JWKSNoMatchingKey();
            return key.publicKey;
          },
          { issuer: config.issuer, audience: config.audience, algorithms: [ALGORITHM], typ: 'at+jwt' },
        );
        if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') return null;
        const claims = { userId: payload.sub, sessionId: payload.sid };
        // Only tokens that carry an expiry and no not-before (ours) can be judged later on `exp` alone.
        // A reload during the verify may have retired its key: then it is not remembered.
        if (typeof payload.exp === 'number' && payload.nbf === undefined && generation === keysGeneration) {
          if (verified.size >= VERIFIED_MAX_ENTRIES) verified.clear();
          verified.set(token, { ...claims, exp: payload.exp });
        }
        return claims;
      } catch (error) {
        if (error instanceof joseErrors.JOSEError) return null;
        throw error;
      }
    },

    async jwks() {
      if (Date.now() - loadedAt > RELOAD_INTERVAL_MS) await reload();
      return { keys: keys.map((key) => ({ ...key.publicJwk, kid: key.kid, kty: key.publicJwk.kty ?? 'OKP' })) };
    },

    async rotate() {
      const row = await newKeyRow();
      await db.transaction().execute(async (trx) => {
        await trx.insertInto('signing_keys').values(row).execute();
        const keep = await trx
          .selectFrom('signing_keys')
          .select('kid')
          .where('retired_at', 'is', null)
          .orderBy('created_at', 'desc')
          .limit(2)
          .execute();
        await trx
          .updateTable('signing_keys')
          .set({ retired_at: nowIso() })
          .where('retired_at', 'is', null)
          .where(
            'kid',
            'not in',
            keep.map((k) => k.kid),
          )
          .execute();
      });
      await reload();
      return row.kid;
    },
  };
}
