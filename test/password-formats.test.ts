// Password hashes imported from other systems (argon2i/d, scrypt PHC, bcrypt, Werkzeug PBKDF2):
// the right password signs in and the stored hash becomes argon2id, a wrong one leaves it as it
// was, and a malformed or too costly hash verifies nothing without a 500, on every database target.
import assert from 'node:assert/strict';
import { pbkdf2Sync, randomBytes, scryptSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import argon2 from 'argon2';
import bcrypt from 'bcryptjs';
import type { LightMyRequestResponse } from 'fastify';
import { createHashPool } from '../src/modules/sessions/hash-pool.js';
import { isSupportedPasswordHash } from '../src/modules/sessions/legacy-hashes.js';
import { createPasswordHasher, type HashOperation } from '../src/modules/sessions/passwords.js';
import { buildTestApp, problem, type TestApp } from './helpers/app.js';
import { targets } from './helpers/databases.js';

// Werkzeug's generate_password_hash: PBKDF2-HMAC over the UTF-8 password with the salt text, as hex.
function werkzeugHash(password: string, digest: 'sha1' | 'sha256' | 'sha512', iterations: number, salt = 'aB3dE5gH7jK9mN1p'): string {
  const length = { sha1: 20, sha256: 32, sha512: 64 }[digest];
  return `pbkdf2:${digest}:${iterations}$${salt}$${pbkdf2Sync(password, salt, iterations, length, digest).toString('hex')}`;
}

const b64 = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '');

function scryptHash(password: string, logCost: number, blockSize: number, parallelism: number): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32, { N: 2 ** logCost, r: blockSize, p: parallelism, maxmem: 64 * 1024 * 1024 });
  return `$scrypt$ln=${logCost},r=${blockSize},p=${parallelism}$${b64(salt)}$${b64(hash)}`;
}

/** A bcrypt hash with the given version prefix ($2a$, $2b$ or $2y$) at cost 4. */
function bcryptHash(password: string, version: '2a' | '2b' | '2y'): Promise<string> {
  return bcrypt.hash(password, `$${version}$04$${bcrypt.genSaltSync(4).slice(7)}`);
}

function argon2Hash(password: string, type: 0 | 1 | 2, memoryCost = 1024): Promise<string> {
  return argon2.hash(password, { type, memoryCost, timeCost: 1, parallelism: 1 });
}

interface Format {
  name: string;
  /** Makes a hash of the password (a fixed vector ignores it and is a hash of `fixedPassword`). */
  make(password: string): Promise<string> | string;
  /** The password to sign in with instead of the user's own. */
  fixedPassword?: string;
}

// Fixed known-answer vectors, made by other implementations than the one under test.
const FIXED = {
  // passlib's documentation of passlib.hash.scrypt, for the password "password".
  scrypt: '$scrypt$ln=8,r=8,p=1$WKs1xljLudd6z9kbY0wpJQ$yCR4iDZYDKv+iEJj6yHY0lv/epnfB6f/w1EbXrsJOuQ',
  // Openwall crypt_blowfish's test vectors, for the password "U*U".
  bcrypt: '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW',
  // Python's hashlib.pbkdf2_hmac('sha256', b'correct horse battery', b'NaCl4Sod1umKAT42', 1000).hex() in
  // Werkzeug's layout (Werkzeug itself is not installed where this was written).
  werkzeug: 'pbkdf2:sha256:1000$NaCl4Sod1umKAT42$1984fb588353431b98e7d5b7a9c2f248d8b0d0f3f68157d7c3dd1b3afc4e9659',
};

const FORMATS: Format[] = [
  { name: 'argon2i', make: (password) => argon2Hash(password, argon2.argon2i) },
  { name: 'argon2d', make: (password) => argon2Hash(password, argon2.argon2d) },
  { name: 'argon2id with other parameters', make: (password) => argon2Hash(password, argon2.argon2id, 2048) },
  { name: 'scrypt PHC', make: (password) => scryptHash(password, 10, 8, 1) },
  { name: 'scrypt PHC, p=2', make: (password) => scryptHash(password, 9, 4, 2) },
  { name: 'scrypt PHC from passlib (fixed)', make: () => FIXED.scrypt, fixedPassword: 'password' },
  { name: 'bcrypt $2a$', make: (password) => bcryptHash(password, '2a') },
  { name: 'bcrypt $2b$', make: (password) => bcryptHash(password, '2b') },
  { name: 'bcrypt $2y$', make: (password) => bcryptHash(password, '2y') },
  { name: 'bcrypt from crypt_blowfish (fixed)', make: () => FIXED.bcrypt, fixedPassword: 'U*U' },
  { name: 'werkzeug pbkdf2:sha256', make: (password) => werkzeugHash(password, 'sha256', 1000) },
  { name: 'werkzeug 2.2 default pbkdf2:sha256:260000', make: (password) => werkzeugHash(password, 'sha256', 260_000) },
  { name: 'werkzeug pbkdf2:sha1', make: (password) => werkzeugHash(password, 'sha1', 1000) },
  { name: 'werkzeug pbkdf2:sha512', make: (password) => werkzeugHash(password, 'sha512', 1000) },
  { name: 'werkzeug pbkdf2:sha256 (fixed)', make: () => FIXED.werkzeug, fixedPassword: 'correct horse battery' },
  {
    name: 'werkzeug with a non-ASCII password and salt',
    make: (password) => werkzeugHash(password, 'sha256', 1000, 'sålt'),
    fixedPassword: 'correct hörse bättery',
  },
];

/**
 * Variants of a valid hash of the password that must verify nothing: broken structure, out-of-range
 * or absurd parameters. Several would verify under a lenient reader, so each can fail.
 */
async function malformedVariants(password: string): Promise<Record<string, string[]>> {
  const scrypt = scryptHash(password, 10, 8, 1);
  const [, , , scryptSalt = '', scryptDigest = ''] = scrypt.split('$');
  const bcryptValid = await bcryptHash(password, '2b');
  const werkzeug = werkzeugHash(password, 'sha256', 1000);
  const [, werkzeugSalt = '', werkzeugHex = ''] = werkzeug.split('$');
  const argon2i = await argon2Hash(password, argon2.argon2i);
  const [, , , , argon2Salt = '', argon2Digest = ''] = argon2i.split('$');
  // The same hash with some fields changed: $<variant>$<version>$<parameters>$<salt>$<hash>.
  const argon2With = (fields: Partial<Record<'variant' | 'version' | 'parameters' | 'salt' | 'hash', string>>) =>
    [
      '',
      fields.variant ?? 'argon2i',
      fields.version ?? 'v=19',
      fields.parameters ?? 'm=1024,t=1,p=1',
      fields.salt ?? argon2Salt,
      fields.hash ?? argon2Digest,
    ].join('$');
  assert.equal(await argon2.verify(argon2With({}), password), true, 'the unchanged fields make a valid hash');
  return {
    argon2: [
      argon2With({ version: 'v=20' }),
      argon2With({ parameters: 'm=1024,t=1,p=1,keyid=AAAA' }),
      argon2With({ parameters: 'm=1024,t=1' }),
      argon2With({ parameters: 'm=1024,t=1,p=1,p=1' }),
      argon2With({ parameters: 'm=4194304,t=1,p=1' }),
      argon2With({ parameters: 'm=1024,t=100000,p=1' }),
      argon2With({ variant: 'argon2x' }),
      argon2With({ hash: `${argon2Digest}=` }),
      argon2With({ salt: `*${argon2Salt}` }),
      argon2With({ hash: argon2Digest.slice(0, 16) }),
      argon2With({}).split('$').slice(0, 5).join('$'),
    ],
    scrypt: [
      scrypt.replace('ln=10,r=8,p=1', 'ln=10,r=8'),
      scrypt.replace('ln=10,r=8,p=1', 'ln=10,r=8,p=1,x=1'),
      scrypt.replace('ln=10,r=8,p=1', 'ln=010,r=8,p=1'),
      scrypt.replace('ln=10,r=8,p=1', 'ln=10,r=8,p=1,p=1'),
      scrypt.replace('ln=10,r=8,p=1', 'ln=30,r=8,p=1'),
      scrypt.replace('ln=10,r=8,p=1', 'ln=10,r=8,p=100000'),
      `$scrypt$ln=10,r=8,p=1$${scryptSalt}`,
      `$scrypt$ln=10,r=8,p=1$${scryptSalt}$${scryptDigest.slice(0, 16)}`,
      `$scrypt$ln=10,r=8,p=1$${scryptSalt}$${scryptDigest}=`,
      `$scrypt$ln=10,r=8,p=1$*${scryptSalt}$${scryptDigest}`,
      `${scrypt}$`,
    ],
    bcrypt: [
      bcryptValid.replace('$2b$', '$2x$'),
      bcryptValid.replace('$04$', '$03$'),
      bcryptValid.replace('$04$', '$31$'),
      bcryptValid.slice(0, -1),
      `${bcryptValid}a`,
      `${bcryptValid.slice(0, 20)}!${bcryptValid.slice(21)}`,
    ],
    werkzeug: [
      werkzeug.replace(':1000$', ':0$'),
      werkzeug.replace(':1000$', ':2000000000$'),
      werkzeug.replace('pbkdf2:sha256:1000', 'pbkdf2:sha256'),
      werkzeug.replace('pbkdf2:sha256', 'pbkdf2:md5'),
      `pbkdf2:sha256:1000$$${werkzeugHex}`,
      `pbkdf2:sha256:1000$${werkzeugSalt}$${werkzeugHex.slice(0, -2)}`,
      `pbkdf2:sha256:1000$${werkzeugSalt}$${werkzeugHex.slice(0, -2)}zz`,
      `${werkzeug}$extra`,
      werkzeugHash(password, 'sha256', 1000, 'salt$with$dollars'),
    ],
  };
}

function signIn(t: TestApp, username: string, password: string) {
  return t.app.inject({ method: 'POST', url: '/v1/sessions', payload: { username, password } });
}

function assertUnauthorized(response: LightMyRequestResponse): void {
  assert.equal(response.statusCode, 401, response.body);
  assert.equal(problem(response).code, 'unauthorized');
}

async function storedHash(t: TestApp, userId: string): Promise<string> {
  const row = await t.services.usersRepository.findById(userId);
  assert.ok(row, `user ${userId} is stored`);
  return row.password_hash;
}

/** The algorithm and cost parameters of an argon2 PHC string. */
function phcParameters(hash: string): { algorithm: string; m: number; t: number; p: number } {
  const [, algorithm, , parameters] = hash.split('$');
  const values = Object.fromEntries((parameters ?? '').split(',').map((pair) => pair.split('=')));
  return { algorithm: algorithm ?? '', m: Number(values.m), t: Number(values.t), p: Number(values.p) };
}

for (const { target, skip } of await targets()) {
  describe(`imported password hashes on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    for (const format of FORMATS) {
      describe(format.name, () => {
        test('the right password signs in and the stored hash becomes argon2id', async () => {
          const user = await t.createUser();
          const password = format.fixedPassword ?? user.password;
          const imported = await format.make(password);
          assert.equal(isSupportedPasswordHash(imported), true, imported);
          await t.services.usersRepository.update(user.id, { password_hash: imported });
          const response = await signIn(t, user.username, password);
          assert.equal(response.statusCode, 201, response.body);
          const stored = await storedHash(t, user.id);
          assert.notEqual(stored, imported);
          assert.deepEqual(phcParameters(stored), { algorithm: 'argon2id', m: 1024, t: 1, p: 1 });
          assert.equal(await argon2.verify(stored, password), true);
          assert.equal((await signIn(t, user.username, password)).statusCode, 201);
          assert.equal(await storedHash(t, user.id), stored);
        });

        test('a wrong password is refused and leaves the hash as it was', async () => {
          const user = await t.createUser();
          const password = format.fixedPassword ?? user.password;
          const imported = await format.make(password);
          await t.services.usersRepository.update(user.id, { password_hash: imported });
          assertUnauthorized(await signIn(t, user.username, `${password}x`));
          assertUnauthorized(await signIn(t, user.username, password.slice(0, -1)));
          assert.equal(await storedHash(t, user.id), imported);
        });
      });
    }

    test('a malformed or too costly hash of every format verifies nothing, with a 401', { timeout: 60_000 }, async () => {
      const user = await t.createUser();
      const malformed = await malformedVariants(user.password);
      for (const [format, variants] of Object.entries(malformed)) {
        for (const variant of variants) {
          await t.services.usersRepository.update(user.id, { password_hash: variant });
          const response = await signIn(t, user.username, user.password);
          assert.equal(response.statusCode, 401, `${format} ${variant}: ${response.body}`);
          assert.equal(await storedHash(t, user.id), variant);
        }
      }
      // HTTP Basic goes the same way.
      const tooCostly = malformed.bcrypt?.find((variant) => variant.startsWith('$2b$31$'));
      assert.ok(tooCostly);
      await t.services.usersRepository.update(user.id, { password_hash: tooCostly });
      const basic = await t.app.inject({ url: '/v1/users/me', headers: { authorization: t.basic(user.username, user.password) } });
      assertUnauthorized(basic);
    });
  });
}

describe('isSupportedPasswordHash', () => {
  test('accepts a hash of every supported format', async () => {
    for (const format of FORMATS) {
      const hash = await format.make('some password');
      assert.equal(isSupportedPasswordHash(hash), true, `${format.name}: ${hash}`);
    }
    assert.equal(isSupportedPasswordHash(await argon2.hash('x')), true);
  });

  test('refuses malformed variants of every format', async () => {
    for (const [format, variants] of Object.entries(await malformedVariants('some password'))) {
      for (const variant of variants) assert.equal(isSupportedPasswordHash(variant), false, `${format}: ${variant}`);
    }
  });

  test('refuses unsupported schemes and non-hashes', () => {
    for (const hash of [
      '',
      'plain text',
      '$argon2id$',
      '$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0',
      '$5$rounds=5000$usesomesillystri$KqJWpanXZHKq2BOB43TSaYhEWsQ1Lr5QNyPCDH/Tp.6',
      'sha1$salt$b2d6ab8c56e0ae67c6a47ff1b9ac0d2f8e1aa5f4',
      'pbkdf2_sha256$260000$salt$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ=',
      `${FIXED.werkzeug}${'0'.repeat(1100)}`,
    ]) {
      assert.equal(isSupportedPasswordHash(hash), false, hash);
    }
  });

  test('takes costs up to the limits and refuses them beyond', () => {
    const salt = 'c2FsdHNhbHRzYWx0c2FsdA';
    const digest = 'yCR4iDZYDKv+iEJj6yHY0lv/epnfB6f/w1EbXrsJOuQ';
    const bcryptTail = FIXED.bcrypt.slice(7);
    const hex = '00'.repeat(32);
    const cases: [string, boolean][] = [
      [`$scrypt$ln=20,r=8,p=1$${salt}$${digest}`, true],
      [`$scrypt$ln=21,r=8,p=1$${salt}$${digest}`, false],
      [`$scrypt$ln=20,r=8,p=4$${salt}$${digest}`, true],
      [`$scrypt$ln=20,r=8,p=5$${salt}$${digest}`, false],
      [`$scrypt$ln=16,r=1,p=1$${salt}$${digest}`, false],
      [`$2b$16$${bcryptTail}`, true],
      [`$2b$17$${bcryptTail}`, false],
      [`$2b$04$${bcryptTail}`, true],
      [`pbkdf2:sha256:10000000$salt$${hex}`, true],
      [`pbkdf2:sha256:10000001$salt$${hex}`, false],
      [`$argon2id$v=19$m=1048576,t=4,p=1$${salt}$${digest}`, true],
      [`$argon2id$v=19$m=1048577,t=1,p=1$${salt}$${digest}`, false],
      [`$argon2id$v=19$m=1048576,t=5,p=1$${salt}$${digest}`, false],
      [`$argon2i$m=4096,t=3,p=1$${salt}$${digest}`, true],
    ];
    for (const [hash, supported] of cases) assert.equal(isSupportedPasswordHash(hash), supported, hash);
  });
});

describe('verifying an imported hash', () => {
  test('goes through the hashing pool and is timed and counted like argon2', async () => {
    const observed: HashOperation[] = [];
    const counted: string[] = [];
    const inner = createHashPool(1, 10);
    let pooled = 0;
    const pool = {
      run<T>(work: () => Promise<T>) {
        pooled += 1;
        return inner.run(work);
      },
      refusal: () => inner.refusal(),
      get active() {
        return inner.active;
      },
      get queued() {
        return inner.queued;
      },
    };
    const hasher = await createPasswordHasher('test', {
      pool,
      observe: (operation) => observed.push(operation),
      countVerification: (result) => counted.push(result),
    });
    const hashes = [scryptHash('pw', 8, 8, 1), await bcryptHash('pw', '2b'), werkzeugHash('pw', 'sha256', 1000)];
    for (const hash of hashes) {
      assert.deepEqual(await hasher.verify(hash, 'pw'), { ok: true, needsRehash: true });
      assert.deepEqual(await hasher.verify(hash, 'pW'), { ok: false, needsRehash: false });
    }
    assert.equal(pooled, 6);
    assert.deepEqual(observed, Array(6).fill('verify'));
    assert.deepEqual(counted, ['match', 'mismatch', 'match', 'mismatch', 'match', 'mismatch']);
  });

  test('a full hashing queue is a 503 for an imported hash too, not a failed password', async () => {
    const pool = createHashPool(1, 0);
    const hasher = await createPasswordHasher('test', { pool });
    const slow = werkzeugHash('pw', 'sha256', 200_000);
    const first = hasher.verify(slow, 'pw');
    await assert.rejects(hasher.verify(werkzeugHash('pw', 'sha256', 1000), 'pw'), { code: 'overloaded' });
    assert.deepEqual(await first, { ok: true, needsRehash: true });
  });

  test('an argon2id hash with the live parameters needs no rehash; argon2i with them does', async () => {
    const hasher = await createPasswordHasher('test');
    assert.deepEqual(await hasher.verify(await argon2Hash('pw', argon2.argon2id), 'pw'), { ok: true, needsRehash: false });
    assert.deepEqual(await hasher.verify(await argon2Hash('pw', argon2.argon2i), 'pw'), { ok: true, needsRehash: true });
  });
});
