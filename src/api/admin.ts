/**
 * Operator endpoints, served on the internal admin port only (never the public one) and guarded by
 * the service token as well, so reaching the port is not enough:
 *
 *   GET  /admin/tenants/:tenantId                     → 200 TenantDetail (view, step log, user, customer)
 *   POST /admin/tenants/:tenantId/suspend  { reason? } → 202 Signaled
 *   POST /admin/tenants/:tenantId/resume               → 202 Signaled
 *   POST /admin/tenants/:tenantId/change-plan { plan } → 202 Signaled
 *   POST /admin/tenants/:tenantId/cancel-deprovision   → 202 Signaled   (only during the grace period)
 *   POST /admin/tenants/:tenantId/retry                → 202 Signaled   (a `failed` tenant: a new run)
 *
 * Signals are idempotent by nature (suspending a suspended tenant changes nothing), so these need
 * no Idempotency-Key. A tenant whose workflow is not running answers 409 `tenant-not-running`.
 */
import express, { type Router } from 'express';
import type { z } from 'zod';
import { tenantWorkflowId } from '../contract';
import type { Db } from '../db/client';
import type { PlanCatalogue } from '../plans';
import type { createAuth } from './auth';
import { isUuid } from './ids';
import { HttpProblem, validationProblem } from './problem';
import { changePlanBody, suspendBody, type TenantDetail } from './schemas';
import type { SignalRequest, TenantWorkflows } from './temporal';
import { createTenantViews } from './tenants';

export interface AdminDeps {
  db: Db;
  workflows: TenantWorkflows;
  plans: PlanCatalogue;
  auth: ReturnType<typeof createAuth>;
  statusQueryTimeoutMs: number;
}

/** How long a retry waits for a failed run that is still closing. */
const RETRY_WAIT_MS = 10_000;

/** The step log shown by `show`: the newest entries, enough for several attempts of every step. */
const STEP_LOG_LIMIT = 200;

export function adminRouter(deps: AdminDeps): Router {
  const { db, workflows, plans, auth } = deps;
  const router = express.Router();
  const json = express.json({ limit: '4kb', strict: true, type: 'application/json' });
  const views = createTenantViews(deps);

  async function tenantRow(raw: unknown) {
    const tenantId = String(raw);
    if (!isUuid(tenantId)) throw new HttpProblem('tenant-not-found', 'there is no tenant with that id (tenant ids are UUIDs)');
    const row = await db.tenant.findUnique({ where: { id: tenantId.toLowerCase() }, include: { user: { select: { stripeCustomerId: true } } } });
    if (!row) throw new HttpProblem('tenant-not-found', `there is no tenant ${tenantId}`);
    return row;
  }

  /** An optional JSON body: absent or empty is `{}`; anything else must match the schema. */
  function body<T>(req: express.Request, schema: z.ZodType<T>, what: string): T {
    const raw: unknown = req.body ?? {};
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw validationProblem(parsed.error, what);
    return parsed.data;
  }

  async function signal(tenantId: string, status: string, req: SignalRequest, action: string) {
    const result = await workflows.signal(tenantId, req);
    if (result === 'not-running') {
      throw new HttpProblem('tenant-not-running', `tenant ${tenantId} is ${status} and its workflow is not running`, { tenantStatus: status });
    }
    return { tenantId, workflowId: tenantWorkflowId(tenantId), action };
  }

  router.get('/admin/tenants/:tenantId', auth.requireService, async (req, res) => {
    const row = await tenantRow(req.params.tenantId);
    // The step log is read after the status: whatever status is shown (the live query's, answered
    // once the workflow task that set it is done), the step that led to it is in the log.
    const [tenant] = await views([row]);
    const steps = await db.tenantStep.findMany({ where: { tenantId: row.id }, orderBy: { id: 'desc' }, take: STEP_LOG_LIMIT, select: { step: true, phase: true, message: true, createdAt: true } });
    const detail: TenantDetail = {
      tenant: tenant!,
      userId: row.userId,
      customerId: row.user?.stripeCustomerId ?? null,
      steps: steps.reverse().map((s) => ({ step: s.step, phase: s.phase, message: s.message, at: s.createdAt.toISOString() })),
    };
    res.json(detail);
  });

  router.post('/admin/tenants/:tenantId/suspend', auth.requireService, json, async (req, res) => {
    const input = body(req, suspendBody, 'the suspend request');
    const row = await tenantRow(req.params.tenantId);
    res.status(202).json(await signal(row.id, row.status, { signal: 'suspend', reason: input.reason ?? 'suspended by an operator' }, 'suspend'));
  });

  router.post('/admin/tenants/:tenantId/resume', auth.requireService, async (req, res) => {
    const row = await tenantRow(req.params.tenantId);
    res.status(202).json(await signal(row.id, row.status, { signal: 'resume' }, 'resume'));
  });

  router.post('/admin/tenants/:tenantId/change-plan', auth.requireService, json, async (req, res) => {
    const input = body(req, changePlanBody, 'the plan change');
    if (!plans.ids().includes(input.plan)) throw new HttpProblem('unknown-plan', `plan ${JSON.stringify(input.plan)} is not in the catalogue`, { plans: plans.ids() });
    const row = await tenantRow(req.params.tenantId);
    res.status(202).json(await signal(row.id, row.status, { signal: 'changePlan', plan: input.plan }, 'change-plan'));
  });

  // The workflow ignores it once teardown has begun: the grace period is the window to change one's mind.
  router.post('/admin/tenants/:tenantId/cancel-deprovision', auth.requireService, async (req, res) => {
    const row = await tenantRow(req.params.tenantId);
    res.status(202).json(await signal(row.id, row.status, { signal: 'cancelDeprovision' }, 'cancel-deprovision'));
  });

  // A failed tenant has had everything undone; a retry is a fresh run under the same workflow id.
  router.post('/admin/tenants/:tenantId/retry', auth.requireService, async (req, res) => {
    const row = await tenantRow(req.params.tenantId);
    if (row.status !== 'failed') {
      throw new HttpProblem('tenant-state-conflict', `tenant ${row.id} is ${row.status}; only a failed tenant can be retried`, { tenantStatus: row.status });
    }
    if (!row.userId) throw new HttpProblem('tenant-state-conflict', `tenant ${row.id} has no user; provision it again with a user id`, { tenantStatus: row.status });
    // The row turns `failed` just before the failed run closes; a start in between would only
    // signal the closing run. Give it a moment to close.
    const deadline = Date.now() + RETRY_WAIT_MS;
    while ((await workflows.runStatus(row.id)) === 'RUNNING') {
      if (Date.now() > deadline) {
        throw new HttpProblem('tenant-state-conflict', `tenant ${row.id}'s failed run is still finishing its cleanup; retry shortly`, { tenantStatus: row.status }, { 'Retry-After': '5' });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const customerId = row.user?.stripeCustomerId ?? undefined;
    const started = await workflows.start({ tenantId: row.id, plan: row.plan, userId: row.userId, customerId, start: { signal: 'resume' }, reuse: 'failed-only' });
    if (started.result === 'closed') {
      throw new HttpProblem('tenant-state-conflict', `tenant ${row.id}'s last run did not fail, so it cannot be retried`, { tenantStatus: row.status });
    }
    // Readers (and `tenantctl watch`) must not see the old run's `failed` as the new run's outcome.
    // Conditional: the new run's recordTenant may already have moved the row on.
    await db.tenant.updateMany({ where: { id: row.id, status: 'failed' }, data: { status: 'provisioning', currentStep: null } });
    res.status(202).json({ tenantId: row.id, workflowId: tenantWorkflowId(row.id), action: 'retry' });
  });

  return router;
}
