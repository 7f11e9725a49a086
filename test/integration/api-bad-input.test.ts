/**
 * Every class of bad webhook input gets its documented 4xx as application/problem+json and leaves
 * no trace in PostgreSQL; events that are valid but useless are 2xx, recorded, and change nothing.
 * No worker runs here: nothing may reach a workflow anyway.
 */
import Stripe from 'stripe';
import { problemType } from '../../src/api/problem';
import { counts, event, get, newCustomer, newSubscription, postEvent, startApi, WEBHOOK_SECRET, type HttpAnswer, type RunningApi } from './api-harness';
import { testDb, uniqueTaskQueue } from './helpers';

describe('webhook input validation (real API and PostgreSQL)', () => {
  const db = testDb();
  let api: RunningApi;

  beforeAll(async () => {
    api = await startApi({ taskQueue: uniqueTaskQueue('api-bad') });
  });
  afterAll(async () => {
    await api.close();
    await db.$disconnect();
  });

  function expectProblem(res: HttpAnswer, status: number, slug: Parameters<typeof problemType>[0], detail?: RegExp): void {
    expect({ status: res.status, contentType: res.contentType }).toEqual({ status, contentType: expect.stringMatching(/^application\/problem\+json/) as unknown });
    expect(res.body).toEqual({
      type: problemType(slug),
      title: expect.any(String) as unknown,
      status,
      detail: expect.stringMatching(detail ?? /./) as unknown,
      instance: '/webhooks/stripe',
      requestId: expect.any(String) as unknown,
    });
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.(ts|js):\d+|whsec_/); // no stack traces, no secret
  }

  const paid = () => event({ type: 'customer.subscription.created', customer: newCustomer(), plan: 'starter', subscription: newSubscription() });
  const now = () => Math.floor(Date.now() / 1000);

  const cases: Array<{ name: string; send: () => Promise<HttpAnswer>; status: number; slug: Parameters<typeof problemType>[0]; detail?: RegExp }> = [
    { name: 'no Stripe-Signature header', send: () => postEvent(api, paid(), { signature: null }), status: 400, slug: 'missing-signature' },
    { name: 'signed with another secret', send: () => postEvent(api, paid(), { secret: 'whsec_not_the_configured_one' }), status: 400, slug: 'invalid-signature', detail: /no v1 signature/ },
    { name: 'a header that is not t=...,v1=...', send: () => postEvent(api, paid(), { signature: 'garbage' }), status: 400, slug: 'invalid-signature', detail: /format/ },
    {
      name: 'a body changed after signing',
      send: () => {
        const e = paid();
        const signature = Stripe.webhooks.generateTestHeaderString({ payload: JSON.stringify(e), secret: WEBHOOK_SECRET });
        return postEvent(api, { ...e, type: 'customer.subscription.deleted' }, { signature });
      },
      status: 400,
      slug: 'invalid-signature',
    },
    { name: 'a timestamp 10 minutes old (replay)', send: () => postEvent(api, paid(), { timestamp: now() - 600 }), status: 400, slug: 'stale-signature', detail: /300 s/ },
    { name: 'a timestamp 10 minutes ahead', send: () => postEvent(api, paid(), { timestamp: now() + 600 }), status: 400, slug: 'stale-signature' },
    { name: 'a signed body that is not JSON', send: () => postEvent(api, '{"id": "evt_1", "object": '), status: 400, slug: 'malformed-json' },
    { name: 'signed JSON that is not an event', send: () => postEvent(api, { hello: 'world' }), status: 400, slug: 'malformed-event' },
    { name: 'an event with an id that is not a Stripe event id', send: () => postEvent(api, { ...paid(), id: 'not-an-event-id' }), status: 400, slug: 'malformed-event', detail: /id/ },
    { name: 'an event without created', send: () => postEvent(api, { ...paid(), created: undefined }), status: 400, slug: 'malformed-event', detail: /created/ },
    { name: 'an empty body', send: () => postEvent(api, ''), status: 400, slug: 'malformed-event' },
    {
      name: 'a body over 256 KiB',
      send: () => postEvent(api, { ...paid(), padding: 'x'.repeat(300 * 1024) }),
      status: 413,
      slug: 'payload-too-large',
    },
  ];

  it.each(cases)('$name → $status $slug, nothing stored', async ({ send, status, slug, detail }) => {
    const before = await counts(db);
    expectProblem(await send(), status, slug, detail);
    expect(await counts(db)).toEqual(before);
  });

  it('records an event of an unhandled type as ignored and answers 200', async () => {
    const before = await counts(db);
    const e = event({ type: 'payment_intent.succeeded', customer: newCustomer(), plan: 'starter' });
    e.type = 'charge.refunded';
    const res = await postEvent(api, e);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ received: true, eventId: e.id, outcome: 'ignored', detail: 'event type charge.refunded is not handled' });
    expect(await db.stripeEvent.findUniqueOrThrow({ where: { id: String(e.id) } })).toMatchObject({ type: 'charge.refunded', outcome: 'ignored', tenantId: null });
    expect(await counts(db)).toEqual({ ...before, stripeEvents: before.stripeEvents + 1 });
    // Delivered again: a duplicate, still one row.
    expect((await postEvent(api, e)).body).toMatchObject({ outcome: 'duplicate' });
    expect(await counts(db)).toEqual({ ...before, stripeEvents: before.stripeEvents + 1 });
  });

  it.each([
    { name: 'an unknown plan', input: { plan: 'platinum' }, reason: /metadata.plan "platinum" is not a plan of the catalogue/ },
    // No plan and no subscription: Stripe is asked which subscription invoice it paid (none here).
    { name: 'no plan', input: {}, reason: /no metadata.plan and paid no subscription invoice/ },
    { name: 'no customer', input: { customer: null }, reason: /has no customer/ },
  ])('records a payment with $name as ignored (200: retrying will not help) and provisions nothing', async ({ input, reason }) => {
    const before = await counts(db);
    const e = event({ type: 'payment_intent.succeeded', customer: newCustomer() });
    const object = (e.data as { object: Record<string, unknown> }).object;
    if ('plan' in input) object.metadata = { ...(object.metadata as object), plan: input.plan };
    if ('customer' in input) object.customer = input.customer;
    const res = await postEvent(api, e);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'ignored', detail: expect.stringMatching(reason) as unknown });
    expect(await db.stripeEvent.findUniqueOrThrow({ where: { id: String(e.id) } })).toMatchObject({ outcome: 'ignored', detail: expect.stringMatching(reason) as unknown });
    expect(await counts(db)).toEqual({ ...before, stripeEvents: before.stripeEvents + 1 });
  });

  it('answers unknown routes and methods with a problem document', async () => {
    const res = await get(api, '/nope');
    expect(res.status).toBe(404);
    expect(res.contentType).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ type: problemType('not-found'), status: 404 });
    expect((await get(api, '/webhooks/stripe')).status).toBe(404);
  });
});
