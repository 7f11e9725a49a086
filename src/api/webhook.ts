/**
 * POST /webhooks/stripe: Stripe's deliveries, verified, recorded, and handed to Temporal.
 *
 * Stripe retries anything but a 2xx for days, sends duplicates and delivers out of order, so:
 * 1. Reject what can never succeed with a 4xx and store nothing: no or bad signature, a timestamp
 *    outside the tolerance (a replay), a body over the size limit, a body that is not a Stripe event.
 * 2. Record the event id (`stripe_events`, unique) as `received`. An id already `dispatched`,
 *    `recorded` or `ignored` is a duplicate: 200, nothing changes. An id still `received` was
 *    interrupted before it finished: it is processed again (every step below is idempotent).
 * 3. Under the tenant's lock: read the subscription and tenant rows, decide (lifecycle.ts), write
 *    the rows, signal or signalWithStart the tenant's workflow, and mark the event `dispatched`
 *    (a signal was delivered), `recorded` (state written, nothing to signal) or `ignored` (with the
 *    reason). All in one transaction: if Temporal or PostgreSQL fails, nothing of it is kept,
 *    the event stays `received`, and the answer is 503 so that Stripe delivers it again.
 * The answer comes as soon as Temporal has the signal; the provisioning itself runs in the workflow.
 */
import express, { type Request, type Router } from 'express';
import Stripe from 'stripe';
import type { Logger } from 'pino';
import type { Db } from '../db/client';
import { tenantWorkflowId, type TenantStatus } from '../contract';
import type { PlanCatalogue } from '../plans';
import { tenantIdForCustomer, tenantIdForSubscription } from './ids';
import { decide, type Dispatch } from './lifecycle';
import type { Metrics, WebhookOutcome } from './metrics';
import { HttpProblem, DependencyError, isDatabaseError } from './problem';
import { ensureTenantRow, ensureUser, withTenantLock, type Tx } from './store';
import { classifyEvent, stripeEventEnvelope, type LifecycleIntent, type StripeEventEnvelope } from './stripe-events';
import type { StartSignal, TenantWorkflows } from './temporal';

export interface WebhookOptions {
  secret: string;
  toleranceSeconds: number;
  bodyLimit: string;
  graceSeconds: number;
}

export interface WebhookDeps {
  db: Db;
  workflows: TenantWorkflows;
  plans: PlanCatalogue;
  logger: Logger;
  metrics: Metrics;
  options: WebhookOptions;
}

export interface WebhookResult {
  received: true;
  eventId: string;
  outcome: Exclude<WebhookOutcome, 'rejected' | 'unavailable' | 'error'>;
  detail?: string;
  tenantId?: string;
  userId?: string;
}

export const WEBHOOK_PATH = '/webhooks/stripe';

/** Verifies the signature and the envelope; throws 4xx problems. */
export function verifyEvent(req: Request, options: Pick<WebhookOptions, 'secret' | 'toleranceSeconds'>): StripeEventEnvelope {
  const signature = req.get('stripe-signature');
  if (!signature) throw new HttpProblem('missing-signature', 'send the Stripe-Signature header that Stripe computed for this body');
  const body: unknown = req.body;
  if (!Buffer.isBuffer(body) || body.length === 0) throw new HttpProblem('malformed-event', 'the request has no body');
  let parsed: unknown;
  try {
    parsed = Stripe.webhooks.constructEvent(body, signature, options.secret, options.toleranceSeconds);
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
    const issue = envelope.error.issues[0];
    throw new HttpProblem('malformed-event', `the body is not a Stripe event${issue ? ` (${issue.path.map(String).join('.') || '(root)'}: ${issue.message})` : ''}`);
  }
  return envelope.data;
}

export function tenantIdFor(intent: Pick<LifecycleIntent, 'subscriptionId' | 'customerId'>): string {
  return intent.subscriptionId ? tenantIdForSubscription(intent.subscriptionId) : tenantIdForCustomer(intent.customerId);
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
      try {
        const result = await processEvent(deps, event);
        metrics.webhookEvents.inc({ type: event.type, outcome: result.outcome });
        logger.info({ requestId: res.locals.requestId, eventId: event.id, type: event.type, outcome: result.outcome, tenantId: result.tenantId, detail: result.detail }, 'webhook event');
        res.status(200).json(result);
      } catch (err) {
        const unavailable = err instanceof DependencyError || isDatabaseError(err);
        metrics.webhookEvents.inc({ type: event.type, outcome: unavailable ? 'unavailable' : 'error' });
        throw err;
      }
    },
  );
  return router;
}

/** Steps 2 and 3 of the module comment, for a verified event. */
export async function processEvent(deps: Pick<WebhookDeps, 'db' | 'workflows' | 'plans' | 'options'>, event: StripeEventEnvelope): Promise<WebhookResult> {
  const { db } = deps;
  const classification = classifyEvent(event, deps.plans);
  const intent = classification.action === 'apply' ? classification.intent : undefined;
  const tenantId = intent ? tenantIdFor(intent) : undefined;
  const base = { received: true as const, eventId: event.id, ...(tenantId ? { tenantId } : {}) };

  const inserted = await db.stripeEvent.createMany({
    data: [{ id: event.id, type: event.type, stripeCreatedAt: new Date(event.created * 1000), outcome: 'received', tenantId: tenantId ?? null }],
    skipDuplicates: true,
  });
  if (inserted.count === 0) {
    const seen = await db.stripeEvent.findUnique({ where: { id: event.id }, select: { outcome: true } });
    if (seen && seen.outcome !== 'received') return { ...base, outcome: 'duplicate', detail: `already ${seen.outcome}` };
    await db.stripeEvent.updateMany({ where: { id: event.id }, data: { attempts: { increment: 1 } } });
  }

  if (!intent || !tenantId) {
    const reason = classification.action === 'ignore' ? classification.reason : 'not applicable';
    await db.stripeEvent.updateMany({ where: { id: event.id, outcome: 'received' }, data: { outcome: 'ignored', detail: reason, processedAt: new Date() } });
    return { ...base, outcome: 'ignored', detail: reason };
  }

  return withTenantLock(db, tenantId, async (tx) => {
    // A concurrent delivery of the same event may have finished while this one waited for the lock.
    const seen = await tx.stripeEvent.findUnique({ where: { id: event.id }, select: { outcome: true } });
    if (seen && seen.outcome !== 'received') return { ...base, outcome: 'duplicate', detail: `already ${seen.outcome}` };

    const subscription = intent.subscriptionId
      ? await tx.subscription.findUnique({ where: { stripeSubscriptionId: intent.subscriptionId } })
      : null;
    const tenant = await tx.tenant.findUnique({ where: { id: tenantId }, select: { status: true, plan: true } });
    const decision = decide({
      intent,
      tenantId,
      subscription,
      tenant: tenant ? { status: tenant.status as TenantStatus, plan: tenant.plan } : null,
      fallbackPlan: deps.plans.ids()[0]!,
      graceSeconds: deps.options.graceSeconds,
    });

    if (decision.action === 'ignored') {
      await finish(tx, event.id, 'ignored', decision.detail);
      return { ...base, outcome: 'ignored', detail: decision.detail };
    }

    const userId = await ensureUser(tx, intent.customerId);
    if (decision.createTenant) {
      await ensureTenantRow(tx, { tenantId, userId, customerId: intent.customerId, ...decision.createTenant });
    }
    if (decision.subscription && intent.subscriptionId) {
      const s = decision.subscription;
      await tx.subscription.upsert({
        where: { stripeSubscriptionId: intent.subscriptionId },
        create: { stripeSubscriptionId: intent.subscriptionId, userId, tenantId: s.tenantId, plan: s.plan, status: s.status, lastEventAt: s.lastEventAt },
        update: { tenantId: s.tenantId, plan: s.plan, status: s.status, lastEventAt: s.lastEventAt },
      });
    }

    const notes: string[] = [];
    let delivered = 0;
    for (const d of decision.dispatches) {
      const result = await dispatch(deps.workflows, d, { tenantId, userId, customerId: intent.customerId });
      if (result === 'delivered') delivered += 1;
      else notes.push(result.note);
      if (result !== 'delivered' && d.op === 'start') break; // the workflow is over: later signals are moot
    }
    const outcome = delivered > 0 ? 'dispatched' : 'recorded';
    const detail = [decision.detail, ...notes].join('; ');
    await finish(tx, event.id, outcome, detail);
    return { ...base, outcome, detail, userId };
  });
}

async function finish(tx: Tx, eventId: string, outcome: 'dispatched' | 'recorded' | 'ignored', detail: string): Promise<void> {
  await tx.stripeEvent.update({ where: { id: eventId }, data: { outcome, detail: detail.slice(0, 2000), processedAt: new Date() } });
}

async function dispatch(
  workflows: TenantWorkflows,
  d: Dispatch,
  who: { tenantId: string; userId: string; customerId: string },
): Promise<'delivered' | { note: string }> {
  const workflowId = tenantWorkflowId(who.tenantId);
  if (d.op === 'start') {
    const start: StartSignal =
      d.signal === 'deprovision'
        ? { signal: 'deprovision', request: { reason: d.reason, graceSeconds: d.graceSeconds } }
        : d.signal === 'suspend'
          ? { signal: 'suspend', reason: 'payment failed' }
          : { signal: 'resume' };
    const result = await workflows.start({ ...who, plan: d.plan, start, reuse: d.signal === 'deprovision' ? 'never' : 'failed-only' });
    return result.result === 'signaled' ? 'delivered' : { note: `${workflowId} has already finished; not started again` };
  }
  const result = await workflows.signal(
    who.tenantId,
    d.signal === 'changePlan' ? { signal: 'changePlan', plan: d.plan } : d.signal === 'suspend' ? { signal: 'suspend', reason: d.reason } : { signal: 'resume' },
  );
  return result === 'signaled' ? 'delivered' : { note: `${d.signal}: ${workflowId} is not running` };
}
