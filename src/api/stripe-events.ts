/**
 * What a verified Stripe event says about a tenant. Pure functions: no I/O, so the mapping can be
 * read and tested on its own. The webhook (webhook.ts) completes what an event lacks from the
 * Stripe API and then decides (billing-decisions.ts).
 *
 * Two billing models:
 * - **Subscriptions** (Stripe Billing): the subscription is the source of truth. Every event that
 *   shows a subscription moves its tenant toward the subscription's status and plan.
 * - **One-off payments** (`payment_intent.succeeded` with `metadata.plan`): one tenant per customer.
 *
 * | Stripe event                                   | what it shows                                   | subscription read from the API? |
 * |------------------------------------------------|-------------------------------------------------|---------------------------------|
 * | customer.subscription.created / updated        | the subscription (status, price → plan)         | no: the event carries it        |
 * | customer.subscription.paused / resumed         | as above                                        | no                              |
 * | customer.subscription.deleted                  | the subscription, canceled                      | no                              |
 * | invoice.paid, invoice.payment_failed           | `parent.subscription_details.subscription`      | yes                             |
 * | checkout.session.completed (mode subscription, paid or no_payment_required) | `subscription` | yes                      |
 * | payment_intent.succeeded, `metadata.plan` without `metadata.subscription_id` | one-off payment (per customer), if amount and currency are the plan's `stripe.oneOffPrice` | no |
 * | payment_intent.succeeded, `metadata.subscription_id` (and maybe `metadata.plan`) | that subscription, if the API agrees (below) | yes |
 * | payment_intent.succeeded, no metadata (Stripe Billing's own)                 | the subscription of the invoice it paid  | yes (invoice payments) |
 * | payment_intent.payment_failed with `metadata.plan` and no subscription       | one-off payment failed (same price check) | no |
 * | an event of a Connect account (`account`) not in STRIPE_CONNECT_ACCOUNTS      | ignored                                  |                                 |
 * | anything else                                  | ignored (2xx, recorded with the reason)         |                                 |
 *
 * PaymentIntent metadata is written by whoever creates the PaymentIntent, so it is a claim, never a
 * fact: a payment naming a subscription is applied only after the subscription is read from the
 * Stripe API and its customer is the payment's, its status is not ended, its price selects the plan
 * the metadata names (if it names one) and is in the payment's currency. A one-off payment buys a
 * plan only for exactly the plan's one-off price.
 *
 * A failed subscription payment (`invoice.payment_failed`, a subscription's PaymentIntent failing)
 * never suspends by itself: Stripe keeps retrying while the subscription is `past_due`, and the
 * subscription's own status says when the customer has really stopped paying.
 */
import { z } from 'zod';
import type { PlanCatalogue } from '../plans';
import { firstIssueText } from '../validation';

/** The parts of a Stripe event envelope the webhook relies on; anything else is a malformed body. */
export const stripeEventEnvelope = z.object({
  id: z.string().regex(/^evt_[A-Za-z0-9_]{1,250}$/, 'must be a Stripe event id (evt_...)'),
  object: z.literal('event'),
  type: z.string().regex(/^[a-z0-9_.]{1,100}$/, 'must be a Stripe event type'),
  created: z.number().int().positive(),
  livemode: z.boolean().optional(),
  /** Set on events of a Stripe Connect account (the connected account's id). */
  account: z.string().max(255).nullish(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});
export type StripeEventEnvelope = z.infer<typeof stripeEventEnvelope>;

/** Event types to enable on the Stripe webhook endpoint for subscriptions (Stripe Billing, Checkout). */
export const SUBSCRIPTION_EVENT_TYPES = [
  'checkout.session.completed',
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.paused',
  'customer.subscription.resumed',
  'customer.subscription.deleted',
  'invoice.paid',
  'invoice.payment_failed',
  'payment_intent.succeeded',
] as const;

/** Event types to enable for one-off payments (`payment_intent.succeeded` with `metadata.plan`). */
export const ONE_OFF_EVENT_TYPES = ['payment_intent.succeeded', 'payment_intent.payment_failed'] as const;

export const HANDLED_EVENT_TYPES = [...new Set([...SUBSCRIPTION_EVENT_TYPES, ...ONE_OFF_EVENT_TYPES])] as const;
export type HandledEventType = (typeof SUBSCRIPTION_EVENT_TYPES)[number] | (typeof ONE_OFF_EVENT_TYPES)[number];

export function isHandledEventType(type: string): type is HandledEventType {
  return (HANDLED_EVENT_TYPES as readonly string[]).includes(type);
}

/** A subscription as decisions see it: whose it is, its status, and the plan its price selects. */
export interface SubscriptionSnapshot {
  id: string;
  customerId: string;
  status: string;
  /** A plan id of the catalogue, when the subscription's price selects one. */
  plan?: string;
  /** Why no plan was found (the price selects none of the catalogue's), for the event's detail. */
  planNote?: string;
  /** The currency of the price that selected the plan, when Stripe gave it. */
  currency?: string;
}

/** What a PaymentIntent says about the subscription it names; checked against the Stripe API. */
export interface PaymentClaim {
  paymentIntentId: string;
  plan?: string;
  currency?: string;
}

interface Base {
  eventId: string;
  eventType: HandledEventType;
  /** Stripe's `created` of the event: the order in which Stripe says things happened. */
  created: Date;
  customerId: string;
}

export type Classification =
  | { action: 'ignore'; reason: string }
  /** The event shows a subscription: the snapshot when it carries one, else it must be read from the API. */
  | (Base & { action: 'subscription'; subscriptionId: string; snapshot?: SubscriptionSnapshot; claim?: PaymentClaim })
  /** A Billing PaymentIntent: its subscription is found through the invoice it paid. */
  | (Base & { action: 'resolve-payment'; paymentIntentId: string })
  | (Base & { action: 'one-off'; paid: boolean; plan?: string });

// Stripe ids are short ASCII tokens; anything longer or odd is not one.
const stripeId = (prefix: string) => z.string().regex(new RegExp(`^${prefix}_[A-Za-z0-9_]{1,200}$`));
const expandable = (prefix: string) => z.union([stripeId(prefix), z.object({ id: stripeId(prefix) }).transform((o) => o.id)]);
const metadata = z.record(z.string(), z.string()).nullish().transform((m) => m ?? {});

const price = z.object({
  id: z.string().nullish(),
  currency: z.string().nullish(),
  lookup_key: z.string().nullish(),
  metadata,
  product: z.union([z.string(), z.object({ metadata }).loose()]).nullish(),
});

export const subscriptionObject = z.object({
  id: stripeId('sub'),
  customer: expandable('cus').nullish(),
  status: z.string().min(1).max(50),
  metadata,
  items: z.object({ data: z.array(z.object({ price: price.nullish() }).loose()) }).nullish(),
});

const paymentIntent = z.object({
  id: stripeId('pi'),
  customer: expandable('cus').nullish(),
  amount: z.number().int().nonnegative().nullish(),
  amount_received: z.number().int().nonnegative().nullish(),
  currency: z.string().max(10).nullish(),
  metadata,
});

const invoice = z.object({
  customer: expandable('cus').nullish(),
  /** API versions before 2025-03-31. */
  subscription: expandable('sub').nullish(),
  parent: z.object({ subscription_details: z.object({ subscription: expandable('sub').nullish() }).nullish() }).nullish(),
});

const checkoutSession = z.object({
  mode: z.string(),
  payment_status: z.string(),
  customer: expandable('cus').nullish(),
  subscription: expandable('sub').nullish(),
});

/** Subscription statuses Stripe never leaves: a payment does not revive such a subscription. */
export const ENDED_STATUSES: ReadonlySet<string> = new Set(['canceled', 'incomplete_expired']);

/**
 * The subscription's status and the plan its (first) price selects. In live mode only explicit
 * price ids select a plan (PlanCatalogue.planForPrice), and the subscription's metadata does not.
 */
export function snapshotOfSubscription(raw: unknown, plans: PlanCatalogue, overrides: { status?: string; livemode?: boolean } = {}): SubscriptionSnapshot | { error: string } {
  const parsed = subscriptionObject.safeParse(raw);
  if (!parsed.success) return { error: `the subscription is not in the expected shape: ${describeIssue(parsed.error)}` };
  const sub = parsed.data;
  if (!sub.customer) return { error: `subscription ${sub.id} has no customer` };
  const base = { id: sub.id, customerId: sub.customer, status: overrides.status ?? sub.status };
  const prices = (sub.items?.data ?? []).map((i) => i.price).filter((p) => p !== null && p !== undefined);
  const notes: string[] = [];
  const explicitOnly = overrides.livemode ?? false;
  for (const p of prices) {
    const found = plans.planForPrice(p, { explicitOnly });
    if ('plan' in found) return { ...base, plan: found.plan, ...(p.currency ? { currency: p.currency } : {}) };
    if ('unknown' in found) notes.push(found.unknown);
  }
  // Subscriptions created with the plan in their own metadata (before prices carried it).
  const named = explicitOnly ? undefined : sub.metadata.plan;
  if (named && plans.ids().includes(named)) return { ...base, plan: named };
  if (named) notes.push(`subscription metadata.plan ${quoted(named)} is not a plan of the catalogue`);
  return { ...base, ...(notes.length ? { planNote: notes.join('; ') } : { planNote: 'its price names no plan' }) };
}

/** Maps a verified, well-formed event to what it shows, or to a reason to ignore it. */
export function classifyEvent(event: StripeEventEnvelope, plans: PlanCatalogue): Classification {
  if (!isHandledEventType(event.type)) return { action: 'ignore', reason: `event type ${event.type} is not handled` };
  const base = { eventId: event.id, eventType: event.type, created: new Date(event.created * 1000) };
  const ignore = (reason: string): Classification => ({ action: 'ignore', reason });
  const obj = event.data.object;

  switch (event.type) {
    case 'customer.subscription.created':
    case 'customer.subscription.updated':
    case 'customer.subscription.paused':
    case 'customer.subscription.resumed':
    case 'customer.subscription.deleted': {
      // A deleted subscription is canceled whatever its payload says.
      const snapshot = snapshotOfSubscription(obj, plans, { livemode: event.livemode ?? false, ...(event.type === 'customer.subscription.deleted' ? { status: 'canceled' } : {}) });
      if ('error' in snapshot) return ignore(snapshot.error);
      return { ...base, action: 'subscription', customerId: snapshot.customerId, subscriptionId: snapshot.id, snapshot };
    }
    case 'invoice.paid':
    case 'invoice.payment_failed': {
      const parsed = invoice.safeParse(obj);
      if (!parsed.success) return ignore(`the invoice is not in the expected shape: ${describeIssue(parsed.error)}`);
      const inv = parsed.data;
      const subscriptionId = inv.parent?.subscription_details?.subscription ?? inv.subscription ?? undefined;
      if (!subscriptionId) return ignore('the invoice belongs to no subscription');
      if (!inv.customer) return ignore('the invoice has no customer');
      return { ...base, action: 'subscription', customerId: inv.customer, subscriptionId };
    }
    case 'checkout.session.completed': {
      const parsed = checkoutSession.safeParse(obj);
      if (!parsed.success) return ignore(`the checkout session is not in the expected shape: ${describeIssue(parsed.error)}`);
      const session = parsed.data;
      if (session.mode !== 'subscription') return ignore(`checkout in ${quoted(session.mode)} mode: one-off payments are handled by payment_intent.succeeded`);
      if (session.payment_status !== 'paid' && session.payment_status !== 'no_payment_required') {
        return ignore(`checkout payment_status is ${quoted(session.payment_status)}: the subscription's own events follow once it is paid`);
      }
      if (!session.subscription) return ignore('the checkout session has no subscription');
      if (!session.customer) return ignore('the checkout session has no customer');
      return { ...base, action: 'subscription', customerId: session.customer, subscriptionId: session.subscription };
    }
    case 'payment_intent.succeeded':
    case 'payment_intent.payment_failed': {
      const parsed = paymentIntent.safeParse(obj);
      if (!parsed.success) return ignore(`the payment intent is not in the expected shape: ${describeIssue(parsed.error)}`);
      const pi = parsed.data;
      if (!pi.customer) return ignore('the payment intent has no customer');
      const succeeded = event.type === 'payment_intent.succeeded';
      const subscriptionId = pi.metadata.subscription_id;
      const named = pi.metadata.plan;
      if (named !== undefined && !plans.ids().includes(named)) {
        return ignore(`metadata.plan ${quoted(named)} is not a plan of the catalogue (${plans.ids().join(', ')})`);
      }
      if (subscriptionId !== undefined) {
        if (!stripeId('sub').safeParse(subscriptionId).success) return ignore(`metadata.subscription_id ${quoted(subscriptionId)} is not a Stripe subscription id`);
        if (!succeeded) return ignore(`a failed payment of subscription ${subscriptionId}: the subscription's status decides (past_due keeps the tenant running while Stripe retries)`);
        // A claim: the webhook reads the subscription from the Stripe API and checks it (module comment).
        const claim: PaymentClaim = { paymentIntentId: pi.id, ...(named ? { plan: named } : {}), ...(pi.currency ? { currency: pi.currency } : {}) };
        return { ...base, action: 'subscription', customerId: pi.customer, subscriptionId, claim };
      }
      if (named !== undefined) {
        const price = plans.get(named).stripe?.oneOffPrice;
        if (!price) return ignore(`plan ${named} has no one-off price in the catalogue (stripe.oneOffPrice): a one-off payment cannot buy it`);
        // What was paid, for a success; what was asked, for a failure.
        const amount = succeeded ? pi.amount_received : pi.amount;
        if (amount !== price.amount || pi.currency !== price.currency) {
          return ignore(
            `a one-off payment of ${amount ?? '(no amount)'} ${pi.currency ?? '(no currency)'} does not match plan ${named}'s price of ${price.amount} ${price.currency}`,
          );
        }
        return { ...base, action: 'one-off', customerId: pi.customer, paid: succeeded, plan: named };
      }
      if (!succeeded) return ignore('a failed payment with no metadata.plan is not a one-off payment; a subscription\'s status decides its tenant');
      return { ...base, action: 'resolve-payment', customerId: pi.customer, paymentIntentId: pi.id };
    }
  }
}

export function quoted(value: string): string {
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
}

function describeIssue(error: z.ZodError): string {
  return firstIssueText(error) ?? 'invalid';
}
