/**
 * The HTTP edges that need no database or Temporal: problem documents for every kind of error,
 * and the webhook's signature and envelope checks.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express, { type Request } from 'express';
import pino from 'pino';
import Stripe from 'stripe';
import { canonicalJson, requestHash } from '../../src/api/idempotency';
import { DependencyError, HttpProblem, PROBLEM_CONTENT_TYPE, errorHandler, notFoundHandler, problemType } from '../../src/api/problem';
import { verifyEvent } from '../../src/api/webhook';
import { buildTestEvent } from '../../src/cli/send-test-event';

describe('error handling', () => {
  const app = express();
  app.get('/problem', () => {
    throw new HttpProblem('tenant-conflict', 'tenant x belongs to another user', { tenantId: 'x' }, { 'X-Extra': '1' });
  });
  app.get('/temporal', () => {
    throw new DependencyError('temporal', 'Temporal call failed', { cause: new Error('14 UNAVAILABLE: secret-host:7233') });
  });
  app.get('/prisma', () => {
    throw Object.assign(new Error("Can't reach database server at `db:5432` as user `admin`"), { name: 'PrismaClientInitializationError' });
  });
  app.get('/bug', async () => {
    await Promise.resolve();
    throw new Error('password=hunter2 in a message');
  });
  app.post('/json', express.json({ limit: '1kb' }), (_req, res) => {
    res.json({ ok: true });
  });
  app.use(notFoundHandler());
  app.use(errorHandler(pino({ level: 'silent' })));

  let url: string;
  let server: ReturnType<typeof app.listen>;
  beforeAll(async () => {
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.close();
    await once(server, 'close');
  });

  async function call(path: string, init?: RequestInit) {
    const res = await fetch(`${url}${path}`, init);
    return { status: res.status, type: res.headers.get('content-type'), headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  }

  it('renders an HttpProblem with the stable shape, its extensions and headers', async () => {
    const res = await call('/problem?x=1');
    expect(res.status).toBe(409);
    expect(res.type).toMatch(new RegExp(`^${PROBLEM_CONTENT_TYPE.replace('+', '\\+')}`));
    expect(res.headers.get('x-extra')).toBe('1');
    expect(res.body).toEqual({
      type: problemType('tenant-conflict'),
      title: 'The tenant belongs to another user',
      status: 409,
      detail: 'tenant x belongs to another user',
      instance: '/problem',
      tenantId: 'x',
    });
  });

  it('turns dependency failures into 503 with Retry-After, without the cause', async () => {
    for (const [path, dependency] of [['/temporal', 'temporal'], ['/prisma', 'postgres']] as const) {
      const res = await call(path);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(res.body).toMatchObject({ type: problemType('dependency-unavailable'), dependency });
      expect(JSON.stringify(res.body)).not.toMatch(/secret-host|admin|db:5432/);
    }
  });

  it('hides unexpected errors behind a 500 with no message or stack', async () => {
    const res = await call('/bug');
    expect(res.status).toBe(500);
    expect(res.body).toMatchObject({ type: problemType('internal-error'), detail: 'an unexpected error occurred; it has been logged' });
    expect(JSON.stringify(res.body)).not.toMatch(/hunter2|\.ts:\d+/);
  });

  it('maps body parser failures to 400/413 problems', async () => {
    const json = { method: 'POST', headers: { 'Content-Type': 'application/json' } };
    expect(await call('/json', { ...json, body: '{"a":' }).then((r) => [r.status, r.body.type])).toEqual([400, problemType('malformed-json')]);
    expect(await call('/json', { ...json, body: JSON.stringify({ a: 'x'.repeat(2048) }) }).then((r) => [r.status, r.body.type])).toEqual([413, problemType('payload-too-large')]);
  });

  it('answers unknown routes with 404 not-found', async () => {
    expect(await call('/nowhere').then((r) => [r.status, r.body.type])).toEqual([404, problemType('not-found')]);
  });
});

describe('verifyEvent', () => {
  const secret = 'whsec_unit';
  const options = { secrets: ['whsec_old_one', secret], toleranceSeconds: 300 };
  const request = (body: Buffer | undefined, signature?: string) => ({ body, get: (h: string) => (h.toLowerCase() === 'stripe-signature' ? signature : undefined) }) as unknown as Request;
  const signed = (payload: string, timestamp?: number) => request(Buffer.from(payload), Stripe.webhooks.generateTestHeaderString({ payload, secret, ...(timestamp ? { timestamp } : {}) }));
  const slug = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return err instanceof HttpProblem ? err.slug : `not a problem: ${String(err)}`;
    }
    return 'accepted';
  };
  const payload = JSON.stringify(buildTestEvent({ type: 'payment_intent.succeeded', customer: 'cus_1', plan: 'starter' }));
  // Read when each case runs: a value captured at load time drifts towards the tolerance boundary.
  const now = () => Math.floor(Date.now() / 1000);

  it('accepts a correctly signed event and returns its envelope', () => {
    expect(verifyEvent(signed(payload), options)).toMatchObject({ object: 'event', type: 'payment_intent.succeeded' });
  });

  it.each([
    ['no signature header', () => request(Buffer.from(payload)), 'missing-signature'],
    ['no body', () => request(undefined, 't=1,v1=abc'), 'malformed-event'],
    ['a wrong signature', () => request(Buffer.from(payload), `t=${now()},v1=${'0'.repeat(64)}`), 'invalid-signature'],
    ['a header without t and v1', () => request(Buffer.from(payload), 'v0=abc'), 'invalid-signature'],
    ['a timestamp 330 s old', () => signed(payload, now() - 330), 'stale-signature'],
    ['a timestamp 330 s ahead', () => signed(payload, now() + 330), 'stale-signature'],
    ['a second, future t= before a current one', () => {
      const header = Stripe.webhooks.generateTestHeaderString({ payload, secret });
      return request(Buffer.from(payload), `t=${now() + 86_400},${header}`);
    }, 'invalid-signature'],
    ['a current t= before a second, future one', () => {
      const header = Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: now() + 86_400 });
      return request(Buffer.from(payload), `t=${now()},${header}`);
    }, 'invalid-signature'],
    ['a signed non-JSON body', () => signed('nope'), 'malformed-json'],
    ['a signed JSON array', () => signed('[]'), 'malformed-event'],
  ])('rejects %s', (_what, req, expected) => {
    expect(slug(() => verifyEvent(req(), options))).toBe(expected);
  });

  it('accepts a delivery signed with any configured secret (a rotation), and names no secret when none matches', () => {
    const withOld = request(Buffer.from(payload), Stripe.webhooks.generateTestHeaderString({ payload, secret: 'whsec_old_one' }));
    expect(slug(() => verifyEvent(withOld, options))).toBe('accepted');
    expect(slug(() => verifyEvent(signed(payload), options))).toBe('accepted');
    expect(slug(() => verifyEvent(signed(payload), { ...options, secrets: ['whsec_old_one'] }))).toBe('invalid-signature');
  });

  it('accepts a timestamp within the tolerance on either side', () => {
    expect(slug(() => verifyEvent(signed(payload, now() - 250), options))).toBe('accepted');
    expect(slug(() => verifyEvent(signed(payload, now() + 250), options))).toBe('accepted');
  });
});

describe('idempotency request hash', () => {
  it('ignores key order and undefined members, but not values, paths or methods', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null }, u: undefined })).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
    const h = requestHash('POST', '/api/tenants/provision', { userId: 'u', plan: 'pro' });
    expect(requestHash('POST', '/api/tenants/provision', { plan: 'pro', userId: 'u' })).toBe(h);
    expect(requestHash('POST', '/api/tenants/provision', { plan: 'starter', userId: 'u' })).not.toBe(h);
    expect(requestHash('POST', '/api/tenants/deprovision', { plan: 'pro', userId: 'u' })).not.toBe(h);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
  });
});
