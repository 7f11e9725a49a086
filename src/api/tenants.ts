/**
 * Tenant endpoints.
 *
 * Users (bearer JWT), on the public port (`userTenantsRouter`):
 *   GET  /api/tenants/status?limit&cursor → 200 { userId, tenants: TenantView[], nextCursor }  (the caller's own)
 *   GET  /api/tenants/:tenantId   → 200 TenantView, 404 when it is not the caller's (whether or not it exists)
 * The service (bearer SERVICE_TOKEN), on the admin port only (`serviceTenantsRouter`):
 *   GET  /api/tenants?customerId&userId&status&plan&limit&cursor → 200 { tenants, nextCursor }
 *   GET  /api/tenants/:tenantId   → 200 TenantView of any tenant
 * The service, with an Idempotency-Key header, on the admin port only:
 *   POST /api/tenants/provision   { userId, plan, tenantId? }               → 202 { workflowId, tenantId } (queued in the outbox)
 *   POST /api/tenants/deprovision { tenantId, reason?, graceSeconds? }       → 202 { workflowId, tenantId }
 *     (signals the running workflow, or starts a cleanup run when the tenant's workflow is closed)
 *
 * Progress comes from PostgreSQL (the tenant row and the tenant_steps log the activities write);
 * a read of one tenant still provisioning or deprovisioning asks the live `status` query too, with a
 * short deadline, and it wins when it answers. Lists never ask Temporal.
 */
import express, { type Router } from 'express';
import type { z } from 'zod';
import type { Db } from '../db/client';
import { succeededStepsByTenant } from '../db/tenant-steps';
import { PROVISION_STEPS, tenantWorkflowId, type TenantProgress } from '../contract';
import type { Tenant } from '../generated/prisma/client';
import type { PlanCatalogue } from '../plans';
import type { createAuth } from './auth';
import { principalUserId } from './auth';
import { isUuid, tenantIdForRequest } from './ids';
import { PAGE_ORDER, afterCursor, page } from './pagination';
import { idempotencyKeyOf, requestHash, runIdempotent, storedProblem } from './idempotency';
import { enqueue } from './outbox';
import { HttpProblem, validationProblem } from './problem';
import { deprovisionBody, provisionBody, serviceListQuery, userListQuery, type TenantView } from './schemas';
import { ensureTenantRow, withTenantLock } from './store';
import type { TenantWorkflows } from './temporal';

export interface TenantsDeps {
  db: Db;
  workflows: TenantWorkflows;
  plans: PlanCatalogue;
  auth: ReturnType<typeof createAuth>;
  statusQueryTimeoutMs: number;
  /** Called after a request queued dispatches in the outbox (the dispatcher's nudge). */
  onQueued?: () => void;
}

export type { TenantView } from './schemas';

const IN_PROGRESS = new Set(['provisioning', 'deprovisioning']);
const JSON_LIMIT = '16kb';

/** Which provisioning steps have succeeded in the tenant's latest attempt, per tenant, in step order. */
async function completedSteps(db: Db, tenantIds: string[]): Promise<Map<string, string[]>> {
  const done = await succeededStepsByTenant(db, tenantIds, PROVISION_STEPS);
  return new Map(tenantIds.map((id) => [id, PROVISION_STEPS.filter((s) => done.get(id)?.has(s))]));
}

/** A pending deprovision (grace period): from the live query, else as the workflow mirrored it. */
function deprovisionDeadline(row: Tenant, live: TenantProgress | undefined): { deprovisionAt?: string } {
  if (live?.deprovisionAt) return { deprovisionAt: live.deprovisionAt };
  const mirrored = (row.metadata as { deprovisionAt?: unknown } | null)?.deprovisionAt;
  return typeof mirrored === 'string' && row.status !== 'deprovisioned' ? { deprovisionAt: mirrored } : {};
}

/**
 * The lifecycle condition (a change that keeps failing and is retried with backoff): from the live
 * query when it carries one, else as the workflow mirrored it into the row's metadata.
 */
function conditionOf(row: Tenant, live: TenantProgress | undefined): { condition?: Record<string, unknown> } {
  if (live) return live.condition ? { condition: { ...live.condition } } : {};
  const c = (row.metadata as { condition?: unknown } | null)?.condition;
  return c && typeof c === 'object' && !Array.isArray(c) ? { condition: c as Record<string, unknown> } : {};
}

/** The last isolation check that passed: from the live query, else as the activity recorded it. */
function isolationOf(row: Tenant, live: TenantProgress | undefined): { isolation?: { status: 'verified'; at: string } } {
  if (live?.isolation) return { isolation: { ...live.isolation } };
  const i = (row.metadata as { isolation?: { status?: unknown; at?: unknown } } | null)?.isolation;
  return i?.status === 'verified' && typeof i.at === 'string' ? { isolation: { status: 'verified', at: i.at } } : {};
}

function view(row: Tenant, steps: string[], live: TenantProgress | undefined): TenantView {
  const completed = live ? [...live.completedSteps] : steps;
  return {
    tenantId: row.id,
    workflowId: row.workflowId,
    status: live?.status ?? row.status,
    plan: live?.plan ?? row.plan,
    namespace: live?.namespace ?? row.namespace,
    currentStep: live ? (live.currentStep ?? null) : row.currentStep,
    progress: { completed: completed.length, total: PROVISION_STEPS.length, completedSteps: completed },
    lastError: live?.lastError ? `${live.lastError.step} failed: ${live.lastError.message}` : row.lastError,
    ...deprovisionDeadline(row, live),
    ...conditionOf(row, live),
    ...isolationOf(row, live),
    createdAt: row.createdAt.toISOString(),
    updatedAt: (live ? new Date(Math.max(row.updatedAt.getTime(), Date.parse(live.updatedAt) || 0)) : row.updatedAt).toISOString(),
    source: live ? 'temporal' : 'postgres',
  };
}

/**
 * Tenant rows as the API shows them: PostgreSQL's mirror (the activities write the row and the step
 * log at every step), with the live query for one tenant in flight. A list is answered from
 * PostgreSQL alone, one statement for the steps of the whole page: asking Temporal once per tenant
 * would make a page of 100 tenants 100 queries, and let anyone who can list load Temporal.
 */
export function createTenantViews(deps: { db: Db; workflows: TenantWorkflows; statusQueryTimeoutMs: number }) {
  return async function views(rows: Tenant[]): Promise<TenantView[]> {
    const steps = await completedSteps(deps.db, rows.map((r) => r.id));
    const one = rows.length === 1 ? rows[0] : undefined;
    const live = [one && IN_PROGRESS.has(one.status) ? await deps.workflows.query(one.id, deps.statusQueryTimeoutMs) : undefined];
    return rows.map((r, i) => view(r, steps.get(r.id) ?? [], live[i]));
  };
}

/** Validates a query string; unknown parameters are refused rather than silently ignored. */
export function parseQuery<T>(req: express.Request, schema: z.ZodType<T>, what: string): T {
  const parsed = schema.safeParse(req.query);
  if (!parsed.success) throw validationProblem(parsed.error, what);
  return parsed.data;
}

/** What a user may ask about their own tenants: the public port. */
export function userTenantsRouter(deps: TenantsDeps): Router {
  const { db, auth } = deps;
  const router = express.Router();
  const views = createTenantViews(deps);

  router.get('/api/tenants/status', auth.requireUser, async (req, res) => {
    const userId = principalUserId(res.locals);
    const q = parseQuery(req, userListQuery, 'the query');
    const rows = await db.tenant.findMany({ where: { userId, ...afterCursor(q.cursor) }, orderBy: PAGE_ORDER, take: q.limit + 1 });
    const p = page(rows, q.limit);
    res.json({ userId, tenants: await views(p.rows), nextCursor: p.nextCursor });
  });

  // For a user, someone else's tenant and a tenant that does not exist look the same.
  router.get('/api/tenants/:tenantId', auth.requireUser, async (req, res) => {
    const tenantId = String(req.params.tenantId);
    const notFound = new HttpProblem('tenant-not-found', `you have no tenant ${isUuid(tenantId) ? tenantId : 'with that id'}`);
    if (!isUuid(tenantId)) throw notFound;
    const row = await db.tenant.findFirst({ where: { id: tenantId.toLowerCase(), userId: principalUserId(res.locals) } });
    if (!row) throw notFound;
    const [one] = await views([row]);
    res.json(one);
  });

  return router;
}

/** The platform backend's and operators' endpoints (service token): the admin port only. */
export function serviceTenantsRouter(deps: TenantsDeps): Router {
  const { db, workflows, plans, auth } = deps;
  const router = express.Router();
  const json = express.json({ limit: JSON_LIMIT, strict: true, type: 'application/json' });
  const views = createTenantViews(deps);

  // The service (platform backend, operators) lists any tenants, by customer, user, status or plan.
  router.get('/api/tenants', auth.requireService, async (req, res) => {
    const q = parseQuery(req, serviceListQuery, 'the query');
    const where = {
      ...(q.userId ? { userId: q.userId } : {}),
      ...(q.customerId ? { user: { stripeCustomerId: q.customerId } } : {}),
      ...(q.status ? { status: q.status } : {}),
      ...(q.plan ? { plan: q.plan } : {}),
      ...afterCursor(q.cursor),
    };
    const rows = await db.tenant.findMany({ where, orderBy: PAGE_ORDER, take: q.limit + 1 });
    const p = page(rows, q.limit);
    res.json({ tenants: await views(p.rows), nextCursor: p.nextCursor });
  });

  router.get('/api/tenants/:tenantId', auth.requireService, async (req, res) => {
    const tenantId = String(req.params.tenantId);
    const notFound = new HttpProblem('tenant-not-found', `there is no tenant ${isUuid(tenantId) ? tenantId : 'with that id'}`);
    if (!isUuid(tenantId)) throw notFound;
    const row = await db.tenant.findUnique({ where: { id: tenantId.toLowerCase() } });
    if (!row) throw notFound;
    const [one] = await views([row]);
    res.json(one);
  });

  /** Parses the JSON body of an internal request; rejects other media types. */
  function body<T>(req: express.Request, schema: z.ZodType<T>, what: string): T {
    if (!req.is('application/json')) throw new HttpProblem('unsupported-media-type', 'send the request body as application/json');
    const parsed = schema.safeParse(req.body);
    if (!parsed.success) throw validationProblem(parsed.error, what);
    return parsed.data;
  }

  /** Idempotent execution plus the replay of a stored answer (including a stored 4xx problem). */
  async function idempotent(
    req: express.Request,
    res: express.Response,
    payload: unknown,
    handler: (key: string) => Promise<{ status: number; body: Record<string, unknown> }>,
  ): Promise<void> {
    const key = idempotencyKeyOf(req);
    const result = await runIdempotent(db, key, requestHash(req.method, req.path, payload), () => handler(key));
    if (result.replayed) res.setHeader('Idempotent-Replayed', 'true');
    const problem = result.replayed ? storedProblem(result.body) : undefined;
    if (problem) throw problem;
    res.status(result.status).json(result.body);
  }

  router.post('/api/tenants/provision', auth.requireService, json, async (req, res) => {
    const input = body(req, provisionBody, 'the provision request');
    await idempotent(req, res, input, async (key) => {
      if (!plans.ids().includes(input.plan)) {
        throw new HttpProblem('unknown-plan', `plan ${JSON.stringify(input.plan)} is not in the catalogue`, { plans: plans.ids() });
      }
      const user = await db.user.findUnique({ where: { id: input.userId }, select: { id: true, stripeCustomerId: true } });
      if (!user) throw new HttpProblem('unknown-user', `there is no user ${input.userId}`);
      const tenantId = input.tenantId ?? tenantIdForRequest(input.userId, key);
      const result = await withTenantLock(db, tenantId, async (tx) => {
        const tenant = await tx.tenant.findUnique({ where: { id: tenantId }, select: { userId: true, plan: true } });
        if (tenant && tenant.userId !== input.userId) throw new HttpProblem('tenant-conflict', `tenant ${tenantId} belongs to another user`);
        if (!tenant) await ensureTenantRow(tx, { tenantId, userId: input.userId, plan: input.plan, status: 'provisioning', customerId: user.stripeCustomerId ?? undefined });
        // Committed with the row and delivered by the outbox dispatcher: no lock is held across a
        // Temporal call. An explicit request may bring back a tenant whose lifecycle ended.
        await enqueue(tx, `api:provision:${key}`, { tenantId, userId: input.userId, ...(user.stripeCustomerId ? { customerId: user.stripeCustomerId } : {}) }, [
          { op: 'start', signal: 'resume', plan: input.plan, reuse: 'always' },
          ...(tenant && tenant.plan !== input.plan ? [{ op: 'signal' as const, signal: 'changePlan' as const, plan: input.plan }] : []),
        ]);
        return { status: 202, body: { workflowId: tenantWorkflowId(tenantId), tenantId } };
      });
      deps.onQueued?.();
      return result;
    });
  });

  router.post('/api/tenants/deprovision', auth.requireService, json, async (req, res) => {
    const input = body(req, deprovisionBody, 'the deprovision request');
    await idempotent(req, res, input, async () => {
      const tenant = await db.tenant.findUnique({ where: { id: input.tenantId }, select: { status: true, plan: true, userId: true } });
      if (!tenant) throw new HttpProblem('tenant-not-found', `there is no tenant ${input.tenantId}`);
      const accepted = { status: 202, body: { workflowId: tenantWorkflowId(input.tenantId), tenantId: input.tenantId } };
      if (tenant.status === 'deprovisioned') return accepted; // already done: the request is satisfied
      const request = { reason: input.reason ?? 'requested through the internal API', ...(input.graceSeconds !== undefined ? { graceSeconds: input.graceSeconds } : {}) };
      const result = await workflows.signal(input.tenantId, { signal: 'deprovision', request });
      // Its workflow is closed (failed, terminated): a cleanup run removes whatever is left.
      if (result === 'not-running') {
        await workflows.cleanup({ tenantId: input.tenantId, plan: tenant.plan, userId: tenant.userId ?? undefined, request });
      }
      return accepted;
    });
  });

  return router;
}
