/**
 * The zod schemas of the HTTP contract: what the handlers validate with, and what
 * src/api/openapi.ts turns into the OpenAPI description. One source for both, so the published
 * contract cannot drift from what the API accepts.
 */
import { z } from 'zod';
import { PROVISION_STEPS } from '../contract';
import { isUuid } from './ids';

export const uuid = z
  .string()
  .refine(isUuid, 'must be a UUID')
  .transform((s) => s.toLowerCase())
  .meta({ format: 'uuid', examples: ['0b0e0d57-5a1c-4b0e-9d2c-6f1e1f3a8a11'] });

export const TENANT_STATUSES = ['provisioning', 'active', 'failed', 'suspended', 'deprovisioning', 'deprovisioned'] as const;

/** A page size: at most 100 per request, so one call never reads an unbounded number of rows. */
export const MAX_PAGE_SIZE = 100;
const limit = (fallback: number) => z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(fallback).meta({ description: `Page size (1–${MAX_PAGE_SIZE}).` });
const cursor = z
  .string()
  .max(200)
  .regex(/^[A-Za-z0-9_-]+$/, 'must be a nextCursor value from a previous page')
  .optional()
  .meta({ description: 'The `nextCursor` of the previous page; omit for the first page.' });

export const tenantIdParams = z.strictObject({ tenantId: z.string().meta({ description: 'Tenant id (UUID).', format: 'uuid' }) });

export const provisionBody = z.strictObject({
  userId: uuid,
  plan: z.string().min(1).max(50),
  tenantId: uuid.optional(),
});

export const deprovisionBody = z.strictObject({
  tenantId: uuid,
  reason: z.string().max(500).optional(),
  graceSeconds: z
    .number()
    .int()
    .min(0)
    .max(365 * 86_400)
    .optional(),
});

export const accepted = z.object({ workflowId: z.string(), tenantId: z.string() }).meta({ id: 'Accepted' });

/** The caller's own tenants (users): a page of at most `limit`, oldest first. */
export const userListQuery = z.strictObject({ limit: limit(MAX_PAGE_SIZE), cursor });

/** Tenants for the service (the platform backend, operators): filters combine with AND. */
export const serviceListQuery = z.strictObject({
  customerId: z.string().min(1).max(255).optional().meta({ description: "Stripe customer id of the tenant's user." }),
  userId: uuid.optional(),
  status: z.enum(TENANT_STATUSES).optional(),
  plan: z.string().min(1).max(50).optional(),
  limit: limit(50),
  cursor,
});

/** A failing lifecycle change that the workflow retries with backoff (absent when none). */
export const condition = z
  .object({
    type: z.string().optional(),
    step: z.string().optional().meta({ description: 'The change being retried: changePlan, suspend, resume, reconcile, …' }),
    message: z.string().optional(),
    attempts: z.number().optional(),
    since: z.string().optional(),
    nextAttemptAt: z.string().optional(),
  })
  .loose()
  .meta({ id: 'Condition' });

export const tenantView = z
  .object({
    tenantId: z.string(),
    workflowId: z.string(),
    status: z.string().meta({ description: `One of ${TENANT_STATUSES.join(', ')}.` }),
    plan: z.string(),
    namespace: z.string().nullable(),
    currentStep: z.string().nullable(),
    progress: z.object({ completed: z.number().int(), total: z.number().int(), completedSteps: z.array(z.string()) }),
    lastError: z.string().nullable(),
    deprovisionAt: z.string().optional().meta({ description: 'When a requested deprovision will run (grace period).' }),
    condition: condition.optional(),
    isolation: z
      .object({ status: z.literal('verified'), at: z.string() })
      .optional()
      .meta({ description: 'The last per-tenant isolation check by traffic that passed; a failing one is the provisioning failure (lastError). Absent where the check is off.' }),
    createdAt: z.string(),
    updatedAt: z.string(),
    source: z.enum(['temporal', 'postgres']).meta({ description: "Where status and progress were read: the live workflow, or PostgreSQL's mirror." }),
  })
  .meta({ id: 'Tenant' });

export const userTenantList = z.object({ userId: z.string(), tenants: z.array(tenantView), nextCursor: z.string().nullable() }).meta({ id: 'UserTenantList' });
export const tenantList = z.object({ tenants: z.array(tenantView), nextCursor: z.string().nullable() }).meta({ id: 'TenantList' });

export const stepEntry = z
  .object({ step: z.string(), phase: z.string(), message: z.string().nullable(), at: z.string() })
  .meta({ id: 'StepLogEntry' });

/** One tenant for operators: the view plus its audit trail (newest last) and user. */
export const tenantDetail = z
  .object({
    tenant: tenantView,
    userId: z.string().nullable(),
    customerId: z.string().nullable(),
    steps: z.array(stepEntry),
  })
  .meta({ id: 'TenantDetail' });

export const suspendBody = z.strictObject({ reason: z.string().max(500).optional() });
export const changePlanBody = z.strictObject({ plan: z.string().min(1).max(50) });
export const signaled = z.object({ tenantId: z.string(), workflowId: z.string(), action: z.string() }).meta({ id: 'Signaled' });

export const problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
  })
  .loose()
  .meta({ id: 'Problem', description: 'RFC 9457 problem details; clients switch on `type`.' });

export type TenantView = z.infer<typeof tenantView>;
export type TenantDetail = z.infer<typeof tenantDetail>;

export const TOTAL_STEPS = PROVISION_STEPS.length;

// --- Stripe events (src/api/events.ts) --------------------------------------------------------

export const EVENT_OUTCOMES = ['received', 'queued', 'recorded', 'ignored'] as const;
export const eventIdParams = z.strictObject({ eventId: z.string().meta({ description: 'Stripe event id (evt_...).' }) });
export const eventListQuery = z.strictObject({
  outcome: z.enum(EVENT_OUTCOMES).optional().meta({ description: '`received`: every delivery met an outage or an error; it can be reprocessed.' }),
  type: z.string().regex(/^[a-z0-9_.]{1,100}$/, 'must be a Stripe event type').optional(),
  tenantId: z.string().refine(isUuid, 'must be a UUID').optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(500).optional(),
});
export const eventView = z
  .object({
    id: z.string(),
    type: z.string(),
    outcome: z.enum(EVENT_OUTCOMES),
    tenantId: z.string().nullable(),
    detail: z.string().nullable(),
    attempts: z.number().int(),
    stripeCreatedAt: z.string(),
    receivedAt: z.string(),
    processedAt: z.string().nullable(),
  })
  .meta({ id: 'StripeEvent' });
export const eventList = z.object({ events: z.array(eventView), nextCursor: z.string().nullable() }).meta({ id: 'StripeEventList' });
export const outboxView = z
  .object({
    id: z.string(),
    payload: z.record(z.string(), z.unknown()),
    attempts: z.number().int(),
    createdAt: z.string(),
    deliveredAt: z.string().nullable(),
    failedAt: z.string().nullable(),
    result: z.string().nullable(),
    lastError: z.string().nullable(),
  })
  .meta({ id: 'OutboxMessage' });
export const eventDetail = eventView.extend({ outbox: z.array(outboxView) }).meta({ id: 'StripeEventDetail' });
export const webhookResult = z
  .object({
    received: z.literal(true),
    eventId: z.string(),
    outcome: z.enum(['queued', 'recorded', 'ignored', 'duplicate']),
    detail: z.string().optional(),
    tenantId: z.string().optional(),
    userId: z.string().optional(),
  })
  .meta({ id: 'WebhookResult' });
export const reprocessResult = webhookResult.extend({ reprocessed: z.literal(true) }).meta({ id: 'ReprocessResult' });
