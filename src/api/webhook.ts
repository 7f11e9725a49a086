/**
 * POST /webhooks/stripe: Stripe's deliveries, verified, decided, committed, and acknowledged fast.
 *
 * Stripe retries anything but a 2xx for days, sends duplicates and delivers out of order, so:
 * 1. Reject what can never succeed with a 4xx and store nothing: no or bad signature, a timestamp
 *    outside the tolerance (a replay), a body over the size limit, a body that is not a Stripe event.
 * 2. Record the event id (`stripe_events`, unique) as `received`. An id already `queued`,
 *    `recorded` or `ignored` is a duplicate: 200, nothing changes. An id still `received` was
 *    interrupted before it finished: it is processed again (every step below is idempotent).
 * 3. Guards: an event of the other mode (test vs. live), or of a Stripe Connect account that is not
 *    in STRIPE_CONNECT_ACCOUNTS, is ignored with the reason. An allowed account's objects are read
 *    from the Stripe API as that account (Stripe-Account header).
 * 4. Complete the event from the Stripe API when it lacks what a decision needs (stripe-api.ts),
 *    before any transaction: Stripe unreachable → 503 (Stripe redelivers); an answer that will not
 *    change (no such object, a refused key) → 500, the event stays `received` for reprocessing.
 *    A PaymentIntent that names a subscription is only a claim: the subscription read from the API
 *    must be the payment's customer's, not ended, and on the plan and currency the payment names.
 * 5. One short transaction under the tenant's advisory lock: read the subscription, customer and
 *    tenant rows, decide (billing-decisions.ts), write the state, queue the workflow dispatches in the
 *    outbox (outbox.ts) and mark the event `queued`, `recorded` or `ignored`. No network call
 *    happens inside it; if PostgreSQL fails, nothing of it is kept and the answer is 503. Its
 *    statements are plain SQL in few round trips (webhook-store.ts): this is the API's hot path.
 * The answer comes as soon as that transaction commits; the dispatcher delivers to Temporal, so a
 * Temporal outage delays provisioning and never turns into failed deliveries.
 */
import express, { type Request, type Router } from 'express';
import type pg from 'pg';
import Stripe from 'stripe';
import type { Logger } from 'pino';
import type { Db } from '../db/client';
import type { PlanCatalogue } from '../plans';
import { firstIssueText } from '../validation';
import { tenantIdForCustomer, tenantIdForSubscription } from './ids';
import { decideOneOff, decideSubscription, type Decision } from './billing-decisions';
import type { Metrics } from './metrics';
import { HttpProblem, DependencyError, isDatabaseError } from './problem';
import { poolOf } from '../db/client';
import { applyDecision, ensureUser, markIgnored, readTenantFacts, recordDelivery, withTenantLockSql, type TenantFacts } from './webhook-store';
import { StripeLookupError, type StripeReader } from './stripe-api';
import {
  ENDED_STATUSES,
  classifyEvent,
  quoted,
  snapshotOfSubscription,
  stripeEventEnvelope,
  type Classification,
  type PaymentClaim,
  type StripeEventEnvelope,
  type SubscriptionSnapshot,
} from './stripe-events';

export interface WebhookOptions {
  /** The endpoint's signing secrets: one, or the old and the new during a rotation. */
  secrets: readonly string[];
  toleranceSeconds: number;
  bodyLimit: string;
  graceSeconds: number;
  /** Which events this deployment accepts: Stripe's test mode or live mode. */
  livemode: boolean;
  /** Subscription statuses that suspend a tenant (default `unpaid`, `paused`). */
  suspendStatuses: ReadonlySet<string>;
  /** Stripe Connect accounts whose events are acted on; an event of any other account is ignored. */
  connectAccounts: ReadonlySet<string>;
}

export interface WebhookDeps {
  db: Db;
  stripe: StripeReader;
  plans: PlanCatalogue;
  logger: Logger;
  metrics: Metrics;
  options: WebhookOptions;
  /** Called after a commit that queued dispatches, so that delivery starts at once. */
  onQueued?: () => void;
}

export interface WebhookResult {
  received: true;
  eventId: string;
  outcome: 'queued' | 'recorded' | 'ignored' | 'duplicate';
  detail?: string;
  tenantId?: string;
  userId?: string;
}

export const WEBHOOK_PATH = '/webhooks/stripe';
/** Verifies the signature and the envelope; throws 4xx problems. */
export function verifyEvent(req: Request, options: Pick<WebhookOptions, 'secrets' | 'toleranceSeconds'>): StripeEventEnvelope {
  const signature = req.get('stripe-signature');
  if (!signature) throw new HttpProblem('missing-signature', 'send the Stripe-Signature header that Stripe computed for this body');
  const body: unknown = req.body;
  if (!Buffer.isBuffer(body) || body.length === 0) throw new HttpProblem('malformed-event', 'the request has no body');
  // The stripe library keeps the last `t=` and the future check below would read the first: with
  // two, a far-future timestamp could hide behind a current one. Stripe sends exactly one.
  const timestamps = signature.split(',').filter((item) => item.trim().startsWith('t=')).length;
  if (timestamps > 1) throw new HttpProblem('invalid-signature', `the Stripe-Signature header has ${timestamps} t= timestamps; Stripe sends exactly one`);
  let parsed: unknown;
  try {
    parsed = constructWithAnySecret(body, signature, options.secrets, options.toleranceSeconds);
  } catch (err) {
    if (err instanceof Stripe.errors.StripeSignatureVerificationError) {
      if (/tolerance/i.test(err.message)) {
        throw new HttpProblem('stale-signature', `the signature's timestamp is more than ${options.toleranceSeconds} s away from now (a replayed or delayed request)`);
      }
      throw new HttpProblem('invalid-signature', /extract|scheme/i.test(err.message)
        ? 'the Stripe-Signature header is not in the t=...,v1=... format'
        : 'no v1 signature in the header matches the body with the configured signing secret');
    }
    if (err instanceof SyntaxError) throw new HttpProblem('malformed-json', 'the signed body is not valid JSON');
    throw err;
  }
  // The library only refuses timestamps in the past; a future one would stretch the replay window.
  const signedAt = Number(/(?:^|,)t=(\d+)/.exec(signature)?.[1]);
  if (signedAt - Date.now() / 1000 > options.toleranceSeconds) {
    throw new HttpProblem('stale-signature', `the signature's timestamp is more than ${options.toleranceSeconds} s away from now (a clock far ahead, or a pre-signed request)`);
  }
  const envelope = stripeEventEnvelope.safeParse(parsed);
  if (!envelope.success) {
    const issue = firstIssueText(envelope.error);
    throw new HttpProblem('malformed-event', `the body is not a Stripe event${issue ? ` (${issue})` : ''}`);
  }
  return envelope.data;
}

/**
 * The event, verified with the first secret that signed it. The library checks the timestamp only
 * once a signature matched, so a tolerance error is final; a mismatch tries the next secret.
 */
function constructWithAnySecret(body: Buffer, signature: string, secrets: readonly string[], toleranceSeconds: number): unknown {
  let mismatch: unknown;
  for (const secret of secrets) {
    try {
      return Stripe.webhooks.constructEvent(body, signature, secret, toleranceSeconds);
    } catch (err) {
      if (!(err instanceof Stripe.errors.StripeSignatureVerificationError) || !/no signatures found matching/i.test(err.message)) throw err;
      mismatch = err;
    }
  }
  throw mismatch;
}

export function webhookRouter(deps: WebhookDeps): Router {
  const { metrics, logger } = deps;
  const router = express.Router();
  router.post(
    WEBHOOK_PATH,
    express.raw({ type: () => true, limit: deps.options.bodyLimit }),
    async (req, res) => {
      let event: StripeEventEnvelope;
      try {
        event = verifyEvent(req, deps.options);
      } catch (err) {
        metrics.webhookEvents.inc({ type: 'unverified', outcome: 'rejected' });
        if (err instanceof HttpProblem) logger.info({ requestId: res.locals.requestId, problem: err.slug }, 'webhook rejected');
        throw err;
      }
      const result = await processAndCount(deps, event, res.locals.requestId as string | undefined);
      res.status(200).json(result);
    },
  );
  return router;
}

/** processEvent with its metric and log line; shared by the webhook and reprocessing. */
export async function processAndCount(deps: WebhookDeps, event: StripeEventEnvelope, requestId?: string, options: ProcessOptions = {}): Promise<WebhookResult> {
  const { metrics, logger } = deps;
  try {
    const result = await processEvent(deps, event, options);
    metrics.webhookEvents.inc({ type: event.type, outcome: result.outcome });
    logger.info({ requestId, eventId: event.id, type: event.type, outcome: result.outcome, tenantId: result.tenantId, detail: result.detail }, 'stripe event');
    if (result.outcome === 'queued') deps.onQueued?.();
    return result;
  } catch (err) {
    const unavailable = err instanceof DependencyError || isDatabaseError(err);
    metrics.webhookEvents.inc({ type: event.type, outcome: unavailable ? 'unavailable' : 'error' });
    throw err;
  }
}

export interface ProcessOptions {
  /** Decide again even when the event already has a final outcome (operator reprocessing). */
  force?: boolean;
}

/** Steps 2 to 5 of the module comment, for a verified event. */
export async function processEvent(deps: Pick<WebhookDeps, 'db' | 'stripe' | 'plans' | 'options'>, event: StripeEventEnvelope, options: ProcessOptions = {}): Promise<WebhookResult> {
  const { db } = deps;
  const base = { received: true as const, eventId: event.id };

  const pool = poolOf(db);
  const delivery = await recordDelivery(pool, event, options.force);
  if (!delivery.proceed) return { ...base, outcome: 'duplicate', detail: `already ${delivery.outcome}` };
  const ignore = async (reason: string, tenantId?: string): Promise<WebhookResult> => {
    // A concurrent delivery of the same event finished it first.
    if (!(await markIgnored(pool, event.id, reason, tenantId, options.force))) return { ...base, outcome: 'duplicate', detail: 'already ignored', ...(tenantId ? { tenantId } : {}) };
    return { ...base, outcome: 'ignored', detail: reason, ...(tenantId ? { tenantId } : {}) };
  };

  const eventLive = event.livemode ?? false;
  if (eventLive !== deps.options.livemode) {
    return ignore(`a ${eventLive ? 'live' : 'test'}-mode event reached a ${deps.options.livemode ? 'live' : 'test'}-mode deployment (STRIPE_MODE)`);
  }

  // A connected account's customer, prices and metadata are that account's to shape.
  const account = event.account ?? undefined;
  if (account !== undefined && !deps.options.connectAccounts.has(account)) {
    return ignore(`an event of Stripe Connect account ${quoted(account)}, which is not in STRIPE_CONNECT_ACCOUNTS`);
  }

  const classification = classifyEvent(event, deps.plans);
  if (classification.action === 'ignore') return ignore(classification.reason);

  let facts: Facts;
  try {
    facts = await completeFromStripe(deps, classification, account);
  } catch (err) {
    if (err instanceof StripeLookupError) {
      await db.stripeEvent.updateMany({ where: { id: event.id, outcome: 'received' }, data: { detail: err.message.slice(0, 2000) } });
      throw new HttpProblem('event-not-processed', `${err.message}; the event is kept and can be reprocessed`, { eventId: event.id });
    }
    throw err;
  }
  if ('ignore' in facts) return ignore(facts.ignore, facts.tenantId);

  const tenantId = facts.tenantId;
  const customerId = classification.customerId;
  const subscriptionId = facts.kind === 'subscription' ? facts.snapshot.id : undefined;
  const who = { eventId: event.id, customerId, tenantId, ...(subscriptionId ? { subscriptionId } : {}) };
  return withTenantLockSql<TenantFacts, WebhookResult>(pool, tenantId, (tx) => readTenantFacts(tx, who), async (tx, state) => {
    // A concurrent delivery of the same event may have finished while this one waited for the lock.
    if (state.eventOutcome && state.eventOutcome !== 'received' && !options.force) return { result: { ...base, tenantId, outcome: 'duplicate', detail: `already ${state.eventOutcome}` } };
    const ignored = (detail: string) => ({
      result: { ...base, outcome: 'ignored' as const, detail, tenantId },
      write: (c: pg.PoolClient) => markIgnored(c, event.id, detail, tenantId, options.force),
    });

    const userId = state.userId ?? (await ensureUser(tx, customerId));
    if (state.tenant && state.tenant.userId !== null && state.tenant.userId !== userId) {
      return ignored(`tenant ${tenantId} belongs to another customer than ${customerId}`);
    }
    const tenant = state.tenant ? { status: state.tenant.status, plan: state.tenant.plan } : null;

    let decision: Decision;
    if (facts.kind === 'subscription') {
      const row = state.subscription;
      if (row && row.customerId !== customerId) {
        return ignored(`subscription ${facts.snapshot.id} belongs to customer ${row.customerId ?? '(none)'}, not ${customerId}`);
      }
      decision = decideSubscription({
        snapshot: facts.snapshot,
        created: classification.created,
        tenantId,
        subscription: row,
        tenant,
        fallbackPlan: deps.plans.ids()[0]!,
        graceSeconds: deps.options.graceSeconds,
        suspendStatuses: deps.options.suspendStatuses,
      });
    } else {
      decision = decideOneOff({ paid: facts.paid, ...(facts.plan ? { plan: facts.plan } : {}), created: classification.created, payment: state.payment, tenant });
    }
    if (decision.action === 'ignored') return ignored(decision.detail);

    const outcome = decision.dispatches.length > 0 ? 'queued' : 'recorded';
    return {
      result: { ...base, outcome, detail: decision.detail, tenantId, userId },
      write: (c: pg.PoolClient) => applyDecision(c, { ...who, userId, decision, outcome }),
    };
  });
}

/** What a decision needs, complete: a subscription snapshot, or a one-off payment. */
type Facts =
  | { kind: 'subscription'; tenantId: string; snapshot: SubscriptionSnapshot }
  | { kind: 'one-off'; tenantId: string; paid: boolean; plan?: string }
  | { ignore: string; tenantId?: string };

/** Reads from the Stripe API what the event lacks (see stripe-events.ts for which events do). */
async function completeFromStripe(deps: Pick<WebhookDeps, 'stripe' | 'plans' | 'options'>, c: Exclude<Classification, { action: 'ignore' }>, account?: string): Promise<Facts> {
  if (c.action === 'one-off') return { kind: 'one-off', tenantId: tenantIdForCustomer(c.customerId), paid: c.paid, ...(c.plan ? { plan: c.plan } : {}) };
  let subscriptionId: string;
  if (c.action === 'resolve-payment') {
    const found = await deps.stripe.subscriptionOfPaymentIntent(c.paymentIntentId, account);
    if (!found) return { ignore: `payment ${c.paymentIntentId} has no metadata.plan and paid no subscription invoice: neither a one-off payment nor a subscription's` };
    subscriptionId = found;
  } else {
    subscriptionId = c.subscriptionId;
    if (c.snapshot) return { kind: 'subscription', tenantId: tenantIdForSubscription(subscriptionId), snapshot: c.snapshot };
  }
  const tenantId = tenantIdForSubscription(subscriptionId);
  const snapshot = snapshotOfSubscription(await deps.stripe.subscription(subscriptionId, account), deps.plans, { livemode: deps.options.livemode });
  if ('error' in snapshot) return { ignore: `read from the Stripe API: ${snapshot.error}`, tenantId };
  if (snapshot.customerId !== c.customerId) {
    return { ignore: `subscription ${subscriptionId} belongs to customer ${snapshot.customerId}, not to the event's ${c.customerId}`, tenantId };
  }
  const disagreement = c.action === 'subscription' && c.claim ? claimDisagreement(c.claim, snapshot) : undefined;
  if (disagreement) return { ignore: disagreement, tenantId };
  return { kind: 'subscription', tenantId, snapshot };
}

/** Why a PaymentIntent's metadata does not describe the subscription Stripe has, or undefined when it does. */
export function claimDisagreement(claim: PaymentClaim, snapshot: SubscriptionSnapshot): string | undefined {
  const payment = `payment ${claim.paymentIntentId}`;
  if (ENDED_STATUSES.has(snapshot.status)) return `${payment} names subscription ${snapshot.id}, which Stripe says is ${snapshot.status}: a payment does not revive it`;
  if (claim.plan !== undefined && claim.plan !== snapshot.plan) {
    return `${payment} names plan ${claim.plan} in its metadata, but subscription ${snapshot.id}'s price selects ${snapshot.plan ?? 'no plan'} (${snapshot.planNote ?? 'read from the Stripe API'})`;
  }
  if (claim.currency !== undefined && snapshot.currency !== undefined && claim.currency !== snapshot.currency) {
    return `${payment} is in ${claim.currency}, but subscription ${snapshot.id}'s price is in ${snapshot.currency}`;
  }
  return undefined;
}
