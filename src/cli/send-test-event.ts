/**
 * Sends a correctly signed Stripe test event to a running API, like `stripe trigger`, and prints
 * the tenant it maps to and how to watch it.
 *
 *   node dist/cli/send-test-event.js --customer cus_demo1 --plan starter [--subscription sub_demo1]
 *        [--type payment_intent.succeeded | customer.subscription.created | invoice.paid | ...]
 *        [--status trialing] [--billing] [--url http://127.0.0.1:8080]
 * Events are built from Stripe's own object fixtures (test/fixtures/stripe/objects.json). A
 * one-off payment is for the plan's one-off price (PLANS_JSON, else the default catalogue). A
 * payment that names `--subscription` is checked against the subscription the Stripe API returns
 * (stripe-mock's fixture belongs to its own customer): for a subscription of your own customer,
 * send `--type customer.subscription.created`.
 *   node dist/cli/send-test-event.js --token --user <user-uuid>      # prints a dev JWT only
 *
 * Environment: STRIPE_WEBHOOK_SECRET (to sign), API_URL (default http://127.0.0.1:8080),
 * JWT_SECRET + JWT_ISSUER + JWT_AUDIENCE (to print a dev JWT for the tenant's user),
 * TEMPORAL_UI_URL and TEMPORAL_NAMESPACE (to print the workflow's Web UI link).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import Stripe from 'stripe';
import { tenantWorkflowId } from '../contract';
import { tenantIdForCustomer, tenantIdForSubscription } from '../api/ids';
import { HANDLED_EVENT_TYPES, type HandledEventType } from '../api/stripe-events';
import { loadPlanCatalogue } from '../plans';

/** The CLI can send every event type the webhook acts on. */
export const TEST_EVENT_TYPES = HANDLED_EVENT_TYPES;
export type TestEventType = HandledEventType;

export interface TestEventInput {
  type: TestEventType;
  customer: string;
  /** One-off payments: `metadata.plan`. Subscriptions: the price's `lookup_key`. */
  plan?: string;
  subscription?: string;
  /** Subscription status for customer.subscription.* events (default active). */
  status?: string;
  /**
   * payment_intent.*: a PaymentIntent that Stripe Billing created for a subscription invoice
   * (no metadata at all). Default: the subscription and plan in metadata, as a one-off integration sets them.
   */
  billing?: boolean;
  /**
   * invoice.*: the amount (0 for a trial's invoice; default 2000). payment_intent.*: the amount
   * (default: the plan's one-off price in the catalogue of PLANS_JSON, else the fixture's).
   */
  amount?: number;
  /** payment_intent.*: the currency (default: the plan's one-off price's, else usd). */
  currency?: string;
  /** checkout.session.completed: `payment_status` (default paid) and `mode` (default subscription). */
  paymentStatus?: string;
  mode?: string;
  /** Stripe's `created`, in seconds (default now). */
  created?: number;
  livemode?: boolean;
  id?: string;
}

type Json = Record<string, unknown>;

/**
 * Stripe's own object fixtures (stripe-mock's, copied into test/fixtures/stripe/objects.json), read
 * once: events are built from them so that payloads have every field Stripe sends.
 */
let fixtures: Record<'event' | 'subscription' | 'invoice' | 'checkout.session' | 'payment_intent', Json> | undefined;
function fixture(name: 'event' | 'subscription' | 'invoice' | 'checkout.session' | 'payment_intent'): Json {
  fixtures ??= JSON.parse(readFileSync(path.resolve(__dirname, '../../test/fixtures/stripe/objects.json'), 'utf8')) as typeof fixtures;
  return structuredClone(fixtures![name]);
}

const token = (bytes = 12) => randomBytes(bytes).toString('hex');

/** The one-off price of a plan in the catalogue of PLANS_JSON (the defaults when unset), if it has one. */
function oneOffPriceOf(plan: string | undefined): { amount: number; currency: string } | undefined {
  if (plan === undefined) return undefined;
  const catalogue = loadPlanCatalogue(process.env.PLANS_JSON);
  return catalogue.ids().includes(plan) ? catalogue.get(plan).stripe?.oneOffPrice : undefined;
}

/** A Stripe subscription object (Stripe's fixture) with this id, customer, status and price lookup key. */
export function buildSubscription(input: { id: string; customer: string; status?: string; plan?: string; created?: number }): Json {
  const sub = fixture('subscription');
  const items = sub.items as { data: Array<Json & { price: Json }>; url: string };
  Object.assign(sub, { id: input.id, customer: input.customer, status: input.status ?? 'active', livemode: false, metadata: {}, created: input.created ?? sub.created });
  for (const item of items.data) {
    item.subscription = input.id;
    if (input.plan !== undefined) item.price.lookup_key = input.plan;
  }
  items.url = `/v1/subscription_items?subscription=${input.id}`;
  return sub;
}

/** A Stripe event shaped like Stripe's own, its object built from Stripe's fixtures. */
export function buildTestEvent(input: TestEventInput): Json {
  const created = input.created ?? Math.floor(Date.now() / 1000);
  const livemode = input.livemode ?? false;
  const subscription = input.subscription ?? `sub_test_${token()}`;
  let object: Json;
  switch (input.type) {
    case 'payment_intent.succeeded':
    case 'payment_intent.payment_failed': {
      const succeeded = input.type === 'payment_intent.succeeded';
      object = fixture('payment_intent');
      const price = oneOffPriceOf(input.plan);
      const amount = input.amount ?? price?.amount ?? (object.amount as number);
      const metadata = input.billing
        ? {}
        : { ...(input.plan ? { plan: input.plan } : {}), ...(input.subscription ? { subscription_id: input.subscription } : {}) };
      Object.assign(object, {
        id: `pi_test_${token()}`,
        client_secret: null,
        customer: input.customer,
        status: succeeded ? 'succeeded' : 'requires_payment_method',
        amount,
        currency: input.currency ?? price?.currency ?? object.currency,
        amount_received: succeeded ? amount : 0,
        last_payment_error: succeeded ? null : object.last_payment_error,
        metadata,
        created,
        livemode,
      });
      break;
    }
    case 'invoice.paid':
    case 'invoice.payment_failed': {
      const paid = input.type === 'invoice.paid';
      const amount = input.amount ?? 2000;
      object = fixture('invoice');
      Object.assign(object, {
        id: `in_test_${token()}`,
        customer: input.customer,
        status: paid ? 'paid' : 'open',
        billing_reason: 'subscription_cycle',
        amount_due: amount,
        amount_paid: paid ? amount : 0,
        amount_remaining: paid ? 0 : amount,
        attempted: true,
        attempt_count: paid ? 1 : 2,
        parent: { type: 'subscription_details', quote_details: null, subscription_details: { subscription, metadata: null } },
        created,
        livemode,
      });
      break;
    }
    case 'checkout.session.completed':
      object = fixture('checkout.session');
      Object.assign(object, {
        id: `cs_test_${token()}`,
        customer: input.customer,
        mode: input.mode ?? 'subscription',
        payment_status: input.paymentStatus ?? 'paid',
        status: 'complete',
        subscription,
        payment_intent: null,
        url: null,
        created,
        livemode,
      });
      break;
    case 'customer.subscription.created':
    case 'customer.subscription.updated':
    case 'customer.subscription.paused':
    case 'customer.subscription.resumed':
    case 'customer.subscription.deleted':
      object = buildSubscription({
        id: subscription,
        customer: input.customer,
        status: input.type === 'customer.subscription.deleted' ? 'canceled' : (input.status ?? 'active'),
        ...(input.plan !== undefined ? { plan: input.plan } : {}),
        created,
      });
      break;
  }
  const envelope = fixture('event');
  return {
    ...envelope,
    id: input.id ?? `evt_test_${token()}`,
    api_version: Stripe.API_VERSION,
    created,
    livemode,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type: input.type,
    data: { object },
  };
}

/** The Stripe-Signature header for `payload`, as Stripe computes it. */
export function signPayload(payload: string, secret: string, timestamp?: number): string {
  return Stripe.webhooks.generateTestHeaderString({ payload, secret, ...(timestamp !== undefined ? { timestamp } : {}) });
}

export async function devJwt(options: { userId: string; secret: string; issuer: string; audience: string; ttlSeconds?: number }): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.userId)
    .setIssuer(options.issuer)
    .setAudience(options.audience)
    .setIssuedAt()
    .setExpirationTime(`${options.ttlSeconds ?? 3600}s`)
    .sign(new TextEncoder().encode(options.secret));
}

function jwtSettings(): { secret: string; issuer: string; audience: string } | undefined {
  const { JWT_SECRET: secret, JWT_ISSUER: issuer, JWT_AUDIENCE: audience } = process.env;
  return secret && issuer && audience ? { secret, issuer, audience } : undefined;
}

const USAGE = `usage:
  send-test-event --customer cus_... --plan <plan> [--subscription sub_...] [--type <event type>] [--status <subscription status>] [--billing] [--url <api url>]
  send-test-event --token --user <user uuid> [--ttl <seconds>]
event types: ${TEST_EVENT_TYPES.join(', ')}`;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      customer: { type: 'string' },
      plan: { type: 'string' },
      subscription: { type: 'string' },
      type: { type: 'string', default: 'payment_intent.succeeded' },
      status: { type: 'string' },
      billing: { type: 'boolean', default: false },
      url: { type: 'string', default: process.env.API_URL ?? 'http://127.0.0.1:8080' },
      token: { type: 'boolean', default: false },
      user: { type: 'string' },
      ttl: { type: 'string', default: '3600' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const jwt = jwtSettings();

  if (values.token) {
    if (!values.user) throw new Error(`--token needs --user <user uuid>\n${USAGE}`);
    if (!jwt) throw new Error('--token needs JWT_SECRET, JWT_ISSUER and JWT_AUDIENCE in the environment');
    console.log(await devJwt({ userId: values.user, ...jwt, ttlSeconds: Number(values.ttl) }));
    return 0;
  }

  const secret = process.env.STRIPE_WEBHOOK_SECRET;
  if (!secret) throw new Error('STRIPE_WEBHOOK_SECRET is not set: it must be the secret the API verifies with');
  if (!values.customer) throw new Error(`--customer is required\n${USAGE}`);
  const type = values.type as TestEventType;
  if (!TEST_EVENT_TYPES.includes(type)) throw new Error(`--type must be one of ${TEST_EVENT_TYPES.join(', ')}`);

  const event = buildTestEvent({ type, customer: values.customer, plan: values.plan, subscription: values.subscription, status: values.status, billing: values.billing });
  const payload = JSON.stringify(event);
  const base = values.url.replace(/\/+$/, '');
  const res = await fetch(`${base}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Stripe-Signature': signPayload(payload, secret) },
    body: payload,
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  console.log(`POST ${base}/webhooks/stripe (${type}, ${String(event.id)}) -> ${res.status}`);
  console.log(text);
  if (!res.ok) return 1;

  const answer = JSON.parse(text) as { tenantId?: string; userId?: string };
  const tenantId = answer.tenantId ?? (values.subscription ? tenantIdForSubscription(values.subscription) : tenantIdForCustomer(values.customer));
  console.log(`\ntenant:   ${tenantId}`);
  console.log(`workflow: ${tenantWorkflowId(tenantId)}`);
  if (process.env.TEMPORAL_UI_URL) {
    console.log(`web UI:   ${process.env.TEMPORAL_UI_URL.replace(/\/+$/, '')}/namespaces/${process.env.TEMPORAL_NAMESPACE ?? 'default'}/workflows/${tenantWorkflowId(tenantId)}`);
  }
  if (answer.userId && jwt) {
    const bearer = await devJwt({ userId: answer.userId, ...jwt });
    console.log(`user:     ${answer.userId}\n\nwatch it (token valid for 1 hour):`);
    console.log(`  curl -s -H 'Authorization: Bearer ${bearer}' ${base}/api/tenants/${tenantId}`);
  } else {
    console.log(`\nwatch it: curl -s -H "Authorization: Bearer $TOKEN" ${base}/api/tenants/${tenantId}`);
    console.log(answer.userId
      ? `  (TOKEN: set JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE and run: send-test-event --token --user ${answer.userId})`
      : '  (TOKEN: a user JWT for the customer\'s user; see send-test-event --token)');
  }
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exit(1);
    },
  );
}
