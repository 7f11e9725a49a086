/** Activities on the tenant row and its step log in PostgreSQL (the status API's mirror). */
import { ApplicationFailure } from '@temporalio/common';
import type { TenantCondition, TenantStatus } from '../contract';
import { tenantWorkflowId } from '../contract';
import { tenantNamespace } from '../naming';
import type { ActivityDeps, StepKit } from './common';

export function tenantRowActivities(deps: ActivityDeps, kit: StepKit) {
  const { db, settings } = deps;
  const { plan, audit, eventKey, dbOnly } = kit;
  return {
    /** Step 1: the tenant row, status `provisioning`. A failed or removed tenant may be provisioned again. */
    async recordTenant(input: { tenantId: string; plan: string; userId?: string; customerId?: string }): Promise<void> {
      let workflowId: string;
      try {
        workflowId = tenantWorkflowId(input.tenantId);
      } catch (err) {
        throw ApplicationFailure.nonRetryable((err as Error).message, 'InvalidTenant');
      }
      // One statement: a new row, or a failed/removed tenant taken up again (any other row is left
      // as it is), and the step log entry.
      return dbOnly('record tenant', async () => {
        plan(input.plan);
        const metadata = JSON.stringify(input.customerId ? { stripeCustomerId: input.customerId } : {});
        await db.$executeRaw`WITH recorded AS (
            INSERT INTO tenants (id, user_id, plan, status, workflow_id, current_step, metadata, updated_at)
            VALUES (${input.tenantId}::uuid, ${input.userId ?? null}::uuid, ${input.plan}, 'provisioning', ${workflowId}, 'recordTenant', ${metadata}::jsonb, now())
            ON CONFLICT (id) DO UPDATE
              SET status = 'provisioning', plan = EXCLUDED.plan, last_error = NULL, current_step = 'recordTenant', updated_at = now()
              WHERE tenants.status IN ('failed', 'deprovisioned')
          )
          INSERT INTO tenant_steps (tenant_id, event_key, step, phase)
          VALUES (${input.tenantId}::uuid, ${eventKey('recordTenant', 'succeeded')}, 'recordTenant', 'succeeded')
          ON CONFLICT (event_key) DO NOTHING`;
      });
    },

    /** Step 2: the namespace name, a pure function of the tenant id, stored on the row. */
    async assignNamespace(input: { tenantId: string }): Promise<string> {
      let namespace: string;
      try {
        namespace = tenantNamespace(input.tenantId, settings.namespacePrefix);
      } catch (err) {
        throw ApplicationFailure.nonRetryable((err as Error).message, 'InvalidTenant');
      }
      // Row and step log (started, succeeded) in one statement: nothing can fail between them.
      return dbOnly('assign namespace', async () => {
        await db.$executeRaw`WITH assigned AS (
            UPDATE tenants SET namespace = ${namespace}, current_step = 'assignNamespace', updated_at = now() WHERE id = ${input.tenantId}::uuid
          )
          INSERT INTO tenant_steps (tenant_id, event_key, step, phase, created_at)
          VALUES (${input.tenantId}::uuid, ${eventKey('assignNamespace', 'started')}, 'assignNamespace', 'started', clock_timestamp()),
                 (${input.tenantId}::uuid, ${eventKey('assignNamespace', 'succeeded')}, 'assignNamespace', 'succeeded', clock_timestamp() + interval '1 millisecond')
          ON CONFLICT (event_key) DO NOTHING`;
        return namespace;
      });
    },

    /** Step 8 and every later status change, mirrored into the tenant row and the step log. */
    async setTenantStatus(input: { tenantId: string; status: TenantStatus; step: string; error?: string }): Promise<void> {
      // One transaction: a reader that sees the new status also sees the step that set it
      // (the status API counts progress from the step log once a tenant is no longer in flight).
      return dbOnly('update tenant status', () => db.$transaction(async (tx) => {
        await tx.tenant.update({
          where: { id: input.tenantId },
          data: {
            status: input.status,
            currentStep: null,
            ...(input.status === 'failed' ? { lastError: input.error ?? 'unknown error' } : {}),
            ...(input.status === 'active' ? { lastError: null } : {}),
          },
        });
        await audit(input.tenantId, input.step, input.status === 'failed' ? 'failed' : 'succeeded', `status ${input.status}${input.error ? `: ${input.error}` : ''}`, tx);
      }));
    },

    /** A lifecycle change failed for good: the tenant stays as it was, the reason is recorded. */
    async recordTenantError(input: { tenantId: string; step: string; error: string }): Promise<void> {
      return dbOnly('record tenant error', () => db.$transaction(async (tx) => {
        await tx.tenant.update({ where: { id: input.tenantId }, data: { lastError: input.error, currentStep: null } });
        await audit(input.tenantId, input.step, 'failed', input.error, tx);
      }));
    },

    /**
     * Mirrors a pending deprovision deadline (a grace period) so the status API can show it;
     * `null` when the pending deprovision was cancelled.
     */
    async recordDeprovisionDeadline(input: { tenantId: string; deprovisionAt: string | null }): Promise<void> {
      return dbOnly('record deprovision deadline', async () => {
        if (input.deprovisionAt === null) {
          await db.$executeRaw`UPDATE tenants SET metadata = metadata - 'deprovisionAt', updated_at = now() WHERE id = ${input.tenantId}::uuid`;
        } else {
          await db.$executeRaw`UPDATE tenants SET metadata = metadata || jsonb_build_object('deprovisionAt', ${input.deprovisionAt}::text), updated_at = now() WHERE id = ${input.tenantId}::uuid`;
        }
      });
    },

    /**
     * Mirrors the lifecycle condition: a failing change being retried (`last_error` and
     * `metadata.condition`, one step-log row per failed attempt), or `null` once it recovered.
     */
    async recordTenantCondition(input: { tenantId: string; condition: TenantCondition | null }): Promise<void> {
      const c = input.condition;
      return dbOnly('record tenant condition', () => db.$transaction(async (tx) => {
        if (c === null) {
          await tx.$executeRaw`UPDATE tenants SET metadata = metadata - 'condition', last_error = NULL, updated_at = now() WHERE id = ${input.tenantId}::uuid`;
          return;
        }
        const error = `${c.step} failed (attempt ${c.attempts}, next at ${c.nextAttemptAt}): ${c.message}`;
        await tx.$executeRaw`UPDATE tenants SET metadata = metadata || jsonb_build_object('condition', ${JSON.stringify(c)}::jsonb), last_error = ${error}, current_step = NULL, updated_at = now() WHERE id = ${input.tenantId}::uuid`;
        await audit(input.tenantId, c.step, 'failed', error, tx);
      }));
    },

    async setTenantPlan(input: { tenantId: string; plan: string }): Promise<void> {
      return dbOnly('update tenant plan', async () => {
        plan(input.plan);
        await db.tenant.update({ where: { id: input.tenantId }, data: { plan: input.plan, lastError: null } });
        await audit(input.tenantId, 'changePlan', 'succeeded', `plan ${input.plan}`);
      });
    },
  };
}
