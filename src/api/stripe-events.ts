/**
 * What a verified Stripe event means for a tenant. Pure functions: no I/O, so the mapping can be
 * read and tested on its own.
 *
 * Event → intent (the webhook turns an intent into state and signals, see lifecycle.ts):
 *
 * | Stripe event                         | intent                 | customer                  | subscription                                                                                  | plan                                                                                   |
 * |--------------------------------------|------------------------|---------------------------|-----------------------------------------------------------------------------------------------|----------------------------------------------------------------------------------------|
 * | payment_intent.succeeded             | payment_succeeded      | `customer` (required)     | `metadata.subscription_id`, else an expanded `invoice`'s subscription, else none (per customer) | `metadata.plan` (required unless the subscription is already known)                 |
 * | payment_intent.payment_failed        | payment_failed         | `customer` (required)     | as above                                                                                      | `metadata.plan` (optional)                                                             |
 * | invoice.payment_failed               | payment_failed         | `customer` (required)     | `parent.subscription_details.subscription` (API >= 2025-03-31), else `subscription` (older)   | `parent.subscription_details.metadata.plan` (optional)                                 |
 * | customer.subscription.updated        | subscription_updated   | `customer` (required)     | the subscription itself                                                                       | `metadata.plan`, else the first item's `price.lookup_key`, else its `price.metadata.plan` |
 * | customer.subscription.deleted        | subscription_deleted   | `customer` (required)     | the subscription itself                                                                       | as above (optional)                                                                    |
 * | any other type                       | ignored (2xx)          |                           |                                                                                               |                                                                                        |
 *
 * A plan must be an id of the plan catalogue. An event that names an unknown plan, or a payment
 * with no customer or no plan, is recorded as ignored with the reason: Stripe retrying it would
 * not make it valid.
 */
import { z } from 'zod';
import type { PlanCatalogue } from '../plans';

/** The parts of a Stripe event envelope the webhook relies on; anything else is a malformed body. */
export const stripeEventEnvelope = z.object({
  id: z.string().regex(/^evt_[A-Za-z0-9_]{1,250}$/, 'must be a Stripe event id (evt_...)'),
  object: z.literal('event'),
  type: z.string().regex(/^[a-z0-9_.]{1,100}$/, 'must be a Stripe event type'),
  created: z.number().int().positive(),
  livemode: z.boolean().optional(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});
export type StripeEventEnvelope = z.infer<typeof stripeEventEnvelope>;

export const HANDLED_EVENT_TYPES = [
  'payment_intent.succeeded',
  'payment_intent.payment_failed',
  'invoice.payment_failed',
  'customer.subscription.updated',
  'customer.subscription.deleted',
] as const;
export type HandledEventType = (typeof HANDLED_EVENT_TYPES)[number];

export function isHandledEventType(type: string): type is HandledEventType {
  return (HANDLED_EVENT_TYPES as readonly string[]).includes(type);
}

export type IntentKind = 'payment_succeeded' | 'payment_failed' | 'subscription_updated' | 'subscription_deleted';

export interface LifecycleIntent {
  kind: IntentKind;
  eventId: string;
  eventType: HandledEventType;
  /** Stripe's `created` of the event: the order in which Stripe says things happened. */
  created: Date;
  customerId: string;
  /** Absent: the payment belongs to no subscription, and the tenant is the customer's own. */
  subscriptionId?: string;
  /** A plan id of the catalogue, when the event names one. */
  plan?: string;
  /** Stripe's subscription status, for subscription events. */
  subscriptionStatus?: string;
  /** Something worth recording about the event that did not stop it (e.g. an unknown plan in an update). */
  note?: string;
}

export type Classification = { action: 'ignore'; reason: string } | { action: 'apply'; intent: LifecycleIntent };

// Stripe ids are short ASCII tokens; anything longer or odd is not one.
const stripeId = (prefix: string) => z.string().regex(new RegExp(`^${prefix}_[A-Za-z0-9_]{1,200}$`));
const expandable = (prefix: string) => z.union([stripeId(prefix), z.object({ id: stripeId(prefix) }).transform((o) => o.id)]);
const metadata = z.record(z.string(), z.string()).nullish().transform((m) => m ?? {});

const price = z.object({ lookup_key: z.string().nullish(), metadata }).nullish();

const paymentIntent = z.object({
  customer: expandable('cus').nullish(),
  metadata,
  invoice: z
    .union([
      z.string(),
      z.object({
        subscription: expandable('sub').nullish(),
        parent: z.object({ subscription_details: z.object({ subscription: expandable('sub') }).nullish() }).nullish(),
      }),
    ])
    .nullish(),
});

const invoice = z.object({
  customer: expandable('cus').nullish(),
  subscription: expandable('sub').nullish(),
  parent: z.object({ subscription_details: z.object({ subscription: expandable('sub'), metadata }).nullish() }).nullish(),
});

const subscription = z.object({
  id: stripeId('sub'),
  customer: expandable('cus').nullish(),
  status: z.string().min(1).max(50),
  metadata,
  items: z.object({ data: z.array(z.object({ price })) }).nullish(),
});

type PlanLookup = { plan?: string } | { unknownPlan: string };

function lookupPlan(candidate: string | null | undefined, plans: PlanCatalogue): PlanLookup {
  if (candidate === undefined || candidate === null || candidate === '') return {};
  return plans.ids().includes(candidate) ? { plan: candidate } : { unknownPlan: candidate };
}

/** The intent's plan, or a note that the event named one the catalogue does not have. */
function planFields(lookup: PlanLookup): Pick<LifecycleIntent, 'plan' | 'note'> {
  if ('unknownPlan' in lookup) return { note: `unknown plan ${quoted(lookup.unknownPlan)} ignored` };
  return lookup.plan ? { plan: lookup.plan } : {};
}

function quoted(value: string): string {
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
}

function subscriptionOfPaymentIntent(pi: z.infer<typeof paymentIntent>): string | undefined {
  const fromMetadata = pi.metadata.subscription_id;
  if (fromMetadata !== undefined) return fromMetadata;
  const inv = pi.invoice;
  if (inv && typeof inv === 'object') return inv.parent?.subscription_details?.subscription ?? inv.subscription ?? undefined;
  return undefined;
}

/** Maps a verified, well-formed event to what it asks of a tenant, or to a reason to ignore it. */
export function classifyEvent(event: StripeEventEnvelope, plans: PlanCatalogue): Classification {
  if (!isHandledEventType(event.type)) return { action: 'ignore', reason: `event type ${event.type} is not handled` };
  const base = { eventId: event.id, eventType: event.type, created: new Date(event.created * 1000) };
  const ignore = (reason: string): Classification => ({ action: 'ignore', reason });
  const obj = event.data.object;

  switch (event.type) {
    case 'payment_intent.succeeded':
    case 'payment_intent.payment_failed': {
      const parsed = paymentIntent.safeParse(obj);
      if (!parsed.success) return ignore(`the payment intent is not in the expected shape: ${describeIssue(parsed.error)}`);
      const pi = parsed.data;
      if (!pi.customer) return ignore('the payment intent has no customer');
      const subscriptionId = subscriptionOfPaymentIntent(pi);
      if (subscriptionId !== undefined && !stripeId('sub').safeParse(subscriptionId).success) {
        return ignore(`metadata.subscription_id ${quoted(subscriptionId)} is not a Stripe subscription id`);
      }
      const plan = lookupPlan(pi.metadata.plan, plans);
      const succeeded = event.type === 'payment_intent.succeeded';
      if ('unknownPlan' in plan) {
        if (succeeded) return ignore(`metadata.plan ${quoted(plan.unknownPlan)} is not a plan of the catalogue (${plans.ids().join(', ')})`);
      }
      return {
        action: 'apply',
        intent: {
          ...base,
          kind: succeeded ? 'payment_succeeded' : 'payment_failed',
          customerId: pi.customer,
          ...(subscriptionId ? { subscriptionId } : {}),
          ...planFields(plan),
        },
      };
    }
    case 'invoice.payment_failed': {
      const parsed = invoice.safeParse(obj);
      if (!parsed.success) return ignore(`the invoice is not in the expected shape: ${describeIssue(parsed.error)}`);
      const inv = parsed.data;
      if (!inv.customer) return ignore('the invoice has no customer');
      const details = inv.parent?.subscription_details;
      const subscriptionId = details?.subscription ?? inv.subscription ?? undefined;
      const plan = lookupPlan(details?.metadata.plan, plans);
      return {
        action: 'apply',
        intent: {
          ...base,
          kind: 'payment_failed',
          customerId: inv.customer,
          ...(subscriptionId ? { subscriptionId } : {}),
          ...planFields(plan),
        },
      };
    }
    case 'customer.subscription.updated':
    case 'customer.subscription.deleted': {
      const parsed = subscription.safeParse(obj);
      if (!parsed.success) return ignore(`the subscription is not in the expected shape: ${describeIssue(parsed.error)}`);
      const sub = parsed.data;
      if (!sub.customer) return ignore('the subscription has no customer');
      const firstPrice = sub.items?.data[0]?.price;
      const plan = lookupPlan(sub.metadata.plan ?? firstPrice?.lookup_key ?? firstPrice?.metadata.plan, plans);
      const deleted = event.type === 'customer.subscription.deleted';
      return {
        action: 'apply',
        intent: {
          ...base,
          kind: deleted ? 'subscription_deleted' : 'subscription_updated',
          customerId: sub.customer,
          subscriptionId: sub.id,
          // A deleted subscription is canceled whatever its payload says.
          subscriptionStatus: deleted ? 'canceled' : sub.status,
          ...planFields(plan),
        },
      };
    }
  }
}

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}` : 'invalid';
}
