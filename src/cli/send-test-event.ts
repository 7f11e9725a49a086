/**
 * Sends a correctly signed Stripe test event to a running API, like `stripe trigger`, and prints
 * the tenant it maps to and how to watch it.
 *
 *   node dist/cli/send-test-event.js --customer cus_demo1 --plan starter [--subscription sub_demo1]
 *        [--type payment_intent.succeeded] [--url http://127.0.0.1:8080]
 *   node dist/cli/send-test-event.js --token --user <user-uuid>      # prints a dev JWT only
 *
 * Environment: STRIPE_WEBHOOK_SECRET (to sign), API_URL (default http://127.0.0.1:8080),
 * JWT_SECRET + JWT_ISSUER + JWT_AUDIENCE (to print a dev JWT for the tenant's user),
 * TEMPORAL_UI_URL and TEMPORAL_NAMESPACE (to print the workflow's Web UI link).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import Stripe from 'stripe';
import { tenantWorkflowId } from '../contract';
import { tenantIdForCustomer, tenantIdForSubscription } from '../api/ids';
import { HANDLED_EVENT_TYPES, type HandledEventType } from '../api/stripe-events';

/** The CLI can send every event type the webhook acts on. */
export const TEST_EVENT_TYPES = HANDLED_EVENT_TYPES;
export type TestEventType = HandledEventType;

export interface TestEventInput {
  type: TestEventType;
  customer: string;
  plan?: string;
  subscription?: string;
  /** Subscription status for customer.subscription.updated (default active). */
  status?: string;
  /** Stripe's `created`, in seconds (default now). */
  created?: number;
  id?: string;
}

const token = (bytes = 12) => randomBytes(bytes).toString('hex');

/** A Stripe event with the fields the API reads, shaped like Stripe's own (API version of the stripe package). */
export function buildTestEvent(input: TestEventInput): Record<string, unknown> {
  const created = input.created ?? Math.floor(Date.now() / 1000);
  const metadata = { ...(input.plan ? { plan: input.plan } : {}), ...(input.subscription ? { subscription_id: input.subscription } : {}) };
  let object: Record<string, unknown>;
  switch (input.type) {
    case 'payment_intent.succeeded':
    case 'payment_intent.payment_failed': {
      const succeeded = input.type === 'payment_intent.succeeded';
      object = {
        id: `pi_test_${token()}`,
        object: 'payment_intent',
        amount: 2000,
        currency: 'usd',
        customer: input.customer,
        status: succeeded ? 'succeeded' : 'requires_payment_method',
        metadata,
        created,
        livemode: false,
      };
      break;
    }
    case 'invoice.payment_failed':
      object = {
        id: `in_test_${token()}`,
        object: 'invoice',
        customer: input.customer,
        status: 'open',
        parent: input.subscription
          ? { type: 'subscription_details', subscription_details: { subscription: input.subscription, metadata: input.plan ? { plan: input.plan } : {} } }
          : null,
        metadata: {},
        created,
        livemode: false,
      };
      break;
    case 'customer.subscription.updated':
    case 'customer.subscription.deleted':
      object = {
        id: input.subscription ?? `sub_test_${token()}`,
        object: 'subscription',
        customer: input.customer,
        status: input.type === 'customer.subscription.deleted' ? 'canceled' : (input.status ?? 'active'),
        metadata: input.plan ? { plan: input.plan } : {},
        items: { object: 'list', data: [{ id: `si_test_${token()}`, object: 'subscription_item', price: { id: `price_test_${token(6)}`, object: 'price', lookup_key: input.plan ?? null, metadata: {} } }] },
        created,
        livemode: false,
      };
      break;
  }
  return {
    id: input.id ?? `evt_test_${token()}`,
    object: 'event',
    api_version: Stripe.API_VERSION,
    created,
    livemode: false,
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
  send-test-event --customer cus_... --plan <plan> [--subscription sub_...] [--type <event type>] [--status <subscription status>] [--url <api url>]
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

  const event = buildTestEvent({ type, customer: values.customer, plan: values.plan, subscription: values.subscription, status: values.status });
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
