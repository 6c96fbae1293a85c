// The OpenAPI document as a reader of /docs meets it: valid OpenAPI 3.1, clean under Redocly's
// recommended rules, and every operation named, tagged and described with examples and the error
// responses the service really sends. /docs itself loads nothing from another origin.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import SwaggerParser from '@apidevtools/swagger-parser';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { chromium } from 'playwright-core';
import { ERROR_CATALOGUE } from '../src/http/errors.js';
import { buildTestApp, type TestApp, type TestUser } from './helpers/app.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

type Json = Record<string, unknown>;
interface Media {
  schema?: Json;
  example?: unknown;
  examples?: Record<string, { value?: unknown }>;
}
interface Response {
  description?: string;
  content?: Record<string, Media>;
}
interface Operation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  parameters?: { in: string; name: string }[];
  requestBody?: { content: Record<string, Media> };
  responses: Record<string, Response>;
}
interface Document {
  openapi: string;
  tags?: { name: string; description?: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json> };
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch']);
/** A JSON pointer segment (RFC 6901). */
const segment = (key: string) => key.replaceAll('~', '~0').replaceAll('/', '~1');
const NO_SUCH_ID = '00000000-0000-7000-8000-000000000000';

// The browser check needs a Chromium: required in CI, skipped (and said so) elsewhere.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const browserSkip = existsSync(CHROMIUM) || process.env.CI === 'true' ? false : `no Chromium at ${CHROMIUM} (set CHROMIUM_PATH)`;
if (browserSkip) process.stderr.write(`# the /docs browser check is SKIPPED: ${browserSkip}\n`);

function operations(doc: Document): { method: string; path: string; name: string; pointer: string; operation: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.has(method))
      .map(([method, operation]) => ({
        method,
        path,
        name: `${method.toUpperCase()} ${path}`,
        pointer: `#/paths/${segment(path)}/${method}`,
        operation,
      })),
  );
}

/** The examples a reader sees on a media type (request body or response), by name. */
function mediaExamples(media: Media): unknown[] {
  if (media.example !== undefined) return [media.example];
  return Object.values(media.examples ?? {}).map((example) => example.value);
}

/** Every `examples` array that sits on a schema, with the JSON pointer of that schema. */
function schemaExamples(node: unknown, pointer: string, found: { pointer: string; examples: unknown[] }[] = []) {
  if (Array.isArray(node)) {
    for (const [index, item] of node.entries()) schemaExamples(item, `${pointer}/${index}`, found);
  } else if (node && typeof node === 'object') {
    const schema = node as Json;
    if (Array.isArray(schema.examples)) found.push({ pointer, examples: schema.examples });
    for (const [key, value] of Object.entries(schema)) {
      if (key !== 'examples') schemaExamples(value, `${pointer}/${segment(key)}`, found);
    }
  }
  return found;
}

function schemaRoots(doc: Document): { pointer: string; schema: unknown }[] {
  const roots: { pointer: string; schema: unknown }[] = Object.entries(doc.components.schemas).map(([name, schema]) => ({
    pointer: `#/components/schemas/${name}`,
    schema,
  }));
  for (const { pointer, operation } of operations(doc)) {
    for (const [index, parameter] of (operation.parameters ?? []).entries()) {
      roots.push({ pointer: `${pointer}/parameters/${index}`, schema: parameter });
    }
    for (const [type, media] of Object.entries(operation.requestBody?.content ?? {})) {
      roots.push({ pointer: `${pointer}/requestBody/content/${segment(type)}/schema`, schema: media.schema });
    }
    for (const [status, response] of Object.entries(operation.responses)) {
      roots.push({ pointer: `${pointer}/responses/${status}`, schema: response });
    }
  }
  return roots;
}

function requiresCredentials(operation: Operation): boolean {
  const security = operation.security ?? [];
  return security.length > 0 && security.every((requirement) => Object.keys(requirement).length > 0);
}

describe('the OpenAPI document', () => {
  let t: TestApp;
  let doc: Document;
  let user: TestUser;

  before(async () => {
    t = await buildTestApp('sqlite');
    doc = JSON.parse(JSON.stringify(t.app.swagger())) as Document;
    user = await t.createUser();
  });
  after(async () => t?.close());

  test('GET /openapi.json serves the same document as the app generates, as OpenAPI 3.1', async () => {
    const response = await t.app.inject({ url: '/openapi.json' });
    assert.equal(response.statusCode, 200, response.body);
    assert.match(String(response.headers['content-type']), /^application\/json/);
    assert.deepEqual(response.json(), doc);
    assert.equal(doc.openapi, '3.1.0');
  });

  test('is a valid OpenAPI 3.1 document (swagger-parser)', async () => {
    // validate() dereferences the object it is given: hand it a copy.
    await assert.doesNotReject(SwaggerParser.validate(structuredClone(doc) as never));
  });

  test("passes Redocly's recommended rules, made stricter, with no warning", async () => {
    const config = await createConfig({
      extends: ['recommended'],
      rules: {
        // gatehouse is not published under a licence (package.json: UNLICENSED, private): there is
        // no licence to name, and inventing one would mislead.
        'info-license': 'off',
        // Stricter than recommended, for what readers and generated clients rely on.
        'operation-operationId': 'error',
        'operation-2xx-response': 'error',
        'operation-4xx-response': 'error',
        'operation-4xx-problem-details-rfc7807': 'error',
        'operation-tag-defined': 'error',
        'tag-description': 'error',
        'no-invalid-media-type-examples': { severity: 'error', allowAdditionalProperties: false },
        'no-invalid-schema-examples': { severity: 'error', allowAdditionalProperties: false },
      },
    });
    // lintFromString resolves nothing outside the document: no network.
    const problems = await lintFromString({ source: JSON.stringify(doc), absoluteRef: 'openapi.json', config });
    const found = problems.map((problem) => `${problem.severity} ${problem.ruleId}: ${problem.message} at ${problem.location[0]?.pointer}`);
    assert.deepEqual(found, []);
  });

  test('a query parameter with a default is optional, and the service really fills it in', async () => {
    const parameters = (doc.paths?.['/v1/users']?.get?.parameters ?? []) as { name: string; required?: boolean }[];
    for (const name of ['limit', 'sort']) {
      assert.equal(parameters.find((parameter) => parameter.name === name)?.required, false, name);
    }
    const listed = await t.app.inject({ url: '/v1/users', headers: { authorization: t.adminBasic } });
    assert.equal(listed.statusCode, 200, 'GET /v1/users without limit or sort');
  });

  test('every operation has a summary, a declared tag and a unique operationId', () => {
    const declaredTags = new Set((doc.tags ?? []).map((tag) => tag.name));
    const ids = new Map<string, string>();
    const missing: string[] = [];
    for (const { name, operation } of operations(doc)) {
      if (!operation.summary?.trim()) missing.push(`${name}: no summary`);
      if (!operation.tags?.length) missing.push(`${name}: no tag`);
      for (const tag of operation.tags ?? []) {
        if (!declaredTags.has(tag)) missing.push(`${name}: tag ${tag} is not declared (with a description) in app.ts`);
      }
      const id = operation.operationId ?? '';
      if (!/^[a-z][A-Za-z]+$/.test(id)) missing.push(`${name}: no camelCase operationId`);
      else if (ids.has(id)) missing.push(`${name}: operationId ${id} is taken by ${ids.get(id)}`);
      ids.set(id, name);
    }
    assert.deepEqual(missing, []);
    assert.ok(ids.size >= 20, `the document lists the operations at all (${ids.size})`);
  });

  test('every request body and every response with a body shows an example', () => {
    const missing: string[] = [];
    for (const { name, operation } of operations(doc)) {
      for (const [type, media] of Object.entries(operation.requestBody?.content ?? {})) {
        if (mediaExamples(media).length === 0) missing.push(`${name}: request body ${type} has no example`);
      }
      for (const [status, response] of Object.entries(operation.responses)) {
        // @fastify/swagger's stand-in when a response schema has no description.
        if (!response.description || response.description === 'Default Response') missing.push(`${name} ${status}: no description`);
        for (const [type, media] of Object.entries(response.content ?? {})) {
          if (mediaExamples(media).length === 0) missing.push(`${name} ${status} ${type}: no example`);
        }
      }
    }
    assert.deepEqual(missing, []);
  });

  test('every example validates against the schema it illustrates', () => {
    const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
    ajv.addSchema(doc as unknown as Json, 'openapi.json');
    let checked = 0;
    const invalid: string[] = [];
    const check = (pointer: string, example: unknown, where: string) => {
      const validate = ajv.getSchema(`openapi.json${pointer}`);
      assert.ok(validate, `${where}: ${pointer} is a schema`);
      if (!validate(example)) invalid.push(`${where}: ${ajv.errorsText(validate.errors)}`);
      checked += 1;
    };
    for (const { name, pointer, operation } of operations(doc)) {
      const media = [
        ...Object.entries(operation.requestBody?.content ?? {}).map(([type, m]) => ({ at: `requestBody/content/${segment(type)}`, m })),
        ...Object.entries(operation.responses).flatMap(([status, response]) =>
          Object.entries(response.content ?? {}).map(([type, m]) => ({ at: `responses/${status}/content/${segment(type)}`, m })),
        ),
      ];
      for (const { at, m } of media) {
        for (const example of mediaExamples(m)) check(`${pointer}/${at}/schema`, example, `${name} ${at}`);
      }
    }
    for (const root of schemaRoots(doc)) {
      for (const { pointer, examples } of schemaExamples(root.schema, root.pointer)) {
        for (const example of examples) check(pointer, example, pointer);
      }
    }
    assert.deepEqual(invalid, []);
    assert.ok(checked > 50, `examples were checked at all (${checked})`);
  });

  test('error responses are application/problem+json, with examples of their own status', () => {
    const wrong: string[] = [];
    for (const { name, operation } of operations(doc)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400) continue;
        const types = Object.keys(response.content ?? {});
        if (types.join() !== 'application/problem+json') wrong.push(`${name} ${status}: ${types.join() || 'no body'}`);
        for (const example of mediaExamples(response.content?.['application/problem+json'] ?? {})) {
          const { code, status: exampleStatus } = example as { status: number; code: keyof typeof ERROR_CATALOGUE };
          if (exampleStatus !== Number(status) || ERROR_CATALOGUE[code]?.status !== Number(status)) {
            wrong.push(`${name} ${status}: example of ${code} (${exampleStatus})`);
          }
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  test('every operation declares the errors its input, authentication, ids and rate limit allow', () => {
    const missing: string[] = [];
    for (const { name, path, operation } of operations(doc)) {
      const declared = new Set(Object.keys(operation.responses));
      const has = (status: number, why: string) => declared.has(String(status)) || missing.push(`${name}: no ${status} (${why})`);
      if (operation.requestBody || (operation.parameters ?? []).length > 0) has(400, 'it takes input');
      if (operation.requestBody) {
        has(413, 'the body limit');
        has(415, 'a body of another type');
      }
      if (requiresCredentials(operation)) has(401, 'it needs credentials');
      if (path.includes('{')) has(404, 'it looks an id up');
      // The general per-address limit (app.ts) covers every route.
      has(429, 'the rate limit');
    }
    assert.deepEqual(missing, []);
  });

  test('every error the service answers to anonymous callers, non-admins and unknown ids is declared', async () => {
    const nonAdmin = t.basic(user.username, user.password);
    const probes: { name: string; statuses: number[] }[] = [];
    const undeclared = new Set<string>();
    for (const { name, method, path, operation } of operations(doc)) {
      const url = path.replaceAll(/\{[^}]+\}/g, NO_SUCH_ID);
      const inject = (headers: Record<string, string>, payload?: string) =>
        t.app.inject({ method: method.toUpperCase() as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
      // Nothing here can succeed at changing anything: no valid body, no existing id, or no rights.
      const answers = [await inject({}), await inject({ authorization: nonAdmin })];
      if (path.includes('{')) answers.push(await inject({ authorization: t.adminBasic }));
      if (operation.requestBody) {
        answers.push(await inject({ authorization: t.adminBasic, 'content-type': 'text/plain' }, 'x'));
        if (operation.requestBody.content['application/json']) {
          answers.push(await inject({ authorization: t.adminBasic, 'content-type': 'application/json' }, '{'));
        }
      }
      const statuses = answers.map((answer) => answer.statusCode);
      probes.push({ name, statuses });
      for (const answer of answers) {
        if (answer.statusCode >= 400 && !operation.responses[String(answer.statusCode)]) {
          undeclared.add(`${name}: answered ${answer.statusCode} ${answer.json().code} but does not declare it`);
        }
      }
    }
    assert.deepEqual([...undeclared], []);
    // The probes reached the checks they aim at.
    const seen = new Set(probes.flatMap((probe) => probe.statuses));
    for (const status of [400, 401, 403, 404, 415]) assert.ok(seen.has(status), `some probe answered ${status}`);
  });
});

describe('the /docs page', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp('sqlite');
  });
  after(async () => t?.close());

  test('serves its page and every asset from this service, under a policy that names no other origin', async () => {
    const page = await t.app.inject({ url: '/docs/' });
    assert.equal(page.statusCode, 200, page.body);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    const csp = String(page.headers['content-security-policy'] ?? '');
    const directives = new Map(
      csp
        .split(';')
        .map((part) => part.trim().split(/\s+/))
        .filter(([name]) => name)
        .map(([name, ...values]) => [name, values]),
    );
    assert.deepEqual(directives.get('script-src'), ["'self'"], csp);
    assert.deepEqual(directives.get('default-src'), ["'self'"], csp);
    for (const [name, values] of directives) {
      for (const value of values) assert.match(value, /^('self'|'none'|data:)$/, `${name} allows only this origin: ${csp}`);
    }

    const references = [...page.body.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((match) => match[1] as string);
    assert.ok(
      references.some((reference) => reference.endsWith('.js')),
      'the page loads its scripts',
    );
    for (const reference of references) {
      assert.doesNotMatch(reference, /^(https?:)?\/\//, `${reference} is served here`);
      const asset = await t.app.inject({ url: new URL(reference, 'http://localhost/docs/').pathname });
      assert.equal(asset.statusCode, 200, `${reference}: ${asset.statusCode}`);
    }

    // The initializer loads the document from this service and turns the external validator off.
    const initializer = await t.app.inject({ url: '/docs/static/swagger-initializer.js' });
    assert.match(initializer.body, /url: resolveUrl\('\.\/json'\)/);
    assert.match(initializer.body, /"?validatorUrl"?: null/);
    const json = await t.app.inject({ url: '/docs/json' });
    assert.equal(json.statusCode, 200);
    assert.deepEqual(json.json(), JSON.parse(JSON.stringify(t.app.swagger())));
  });

  test('renders every operation and its examples in a browser, fetching nothing from elsewhere', { skip: browserSkip }, async () => {
    const origin = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      const elsewhere: string[] = [];
      page.on('request', (request) => {
        const url = request.url();
        if (!url.startsWith(`${origin}/`) && !url.startsWith('data:')) elsewhere.push(url);
      });
      await page.goto(`${origin}/docs/`);
      await page.waitForSelector('.opblock', { timeout: 30_000 });
      const doc = JSON.parse(JSON.stringify(t.app.swagger())) as Document;
      assert.equal(await page.locator('.opblock').count(), operations(doc).length);

      const createUser = page.locator('#operations-users-createUser');
      await createUser.locator('.opblock-summary').click();
      await createUser.getByText('urn:gatehouse:problem:invalid_request').first().waitFor({ timeout: 10_000 });
      const shown = (await createUser.textContent()) ?? '';
      assert.match(shown, /"password":\s*"correct horse battery staple"/, 'the request body example');
      assert.match(shown, /"id":\s*"019acb3e-8d2a-7c41-9a35-2f6f2b1e4d10"/, 'the 201 example');
      assert.deepEqual(elsewhere, []);
    } finally {
      await browser.close();
    }
  });
});
