/** Activities on the tenant row and its step log in PostgreSQL (the status API's mirror). */
import { ApplicationFailure } from '@temporalio/common';
import type { TenantCondition, TenantStatus } from '../contract';
import { tenantWorkflowId } from '../contract';
import { tenantNamespace } from '../naming';
import type { ActivityDeps, StepKit } from './common';

export function tenantRowActivities(deps: ActivityDeps, kit: StepKit) {
  const { settings } = deps;
  const { sql, plan, stepRow, eventKey, dbOnly } = kit;

  /**
   * Updates the tenant row and logs the step (step, phase, message) in one statement: a reader
   * that sees the change also sees the step that made it. `set` is the SET list: $1 is the tenant
   * id, $2–$5 the step-log row's event key, step, phase and message, and `values` follow from $6.
   * A missing row is a final failure, as the change has nowhere to go.
   */
  async function updateRowAndLog(
    what: string,
    tenantId: string,
    set: string,
    log: [step: string, phase: Parameters<StepKit['stepRow']>[2], message: string],
    values: unknown[] = [],
  ): Promise<void> {
    const { rows } = await sql.query<{ n: number }>(
      `WITH updated AS (
         UPDATE tenants SET ${set}, updated_at = now() WHERE id = $1::uuid RETURNING id
       ), logged AS (
         INSERT INTO tenant_steps (tenant_id, event_key, step, phase, message)
         SELECT id, $2, $3, $4, $5 FROM updated
         ON CONFLICT (event_key) DO NOTHING
       )
       SELECT count(*)::int AS n FROM updated`,
      [...stepRow(tenantId, ...log), ...values],
    );
    if (rows[0]?.n !== 1) throw ApplicationFailure.nonRetryable(`${what} (database): there is no tenant row ${tenantId}`, 'DatabaseRejected');
  }

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
        await sql.query(
          `WITH recorded AS (
             INSERT INTO tenants (id, user_id, plan, status, workflow_id, current_step, metadata, updated_at)
             VALUES ($1::uuid, $2::uuid, $3, 'provisioning', $4, 'recordTenant', $5::jsonb, now())
             ON CONFLICT (id) DO UPDATE
               SET status = 'provisioning', plan = EXCLUDED.plan, last_error = NULL, current_step = 'recordTenant', updated_at = now()
               WHERE tenants.status IN ('failed', 'deprovisioned')
           )
           INSERT INTO tenant_steps (tenant_id, event_key, step, phase) VALUES ($1::uuid, $6, 'recordTenant', 'succeeded')
           ON CONFLICT (event_key) DO NOTHING`,
          [input.tenantId, input.userId ?? null, input.plan, workflowId, metadata, eventKey('recordTenant', 'succeeded')],
        );
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
        await sql.query(
          `WITH assigned AS (
             UPDATE tenants SET namespace = $2, current_step = 'assignNamespace', updated_at = now() WHERE id = $1::uuid
           )
           INSERT INTO tenant_steps (tenant_id, event_key, step, phase, created_at)
           VALUES ($1::uuid, $3, 'assignNamespace', 'started', clock_timestamp()),
                  ($1::uuid, $4, 'assignNamespace', 'succeeded', clock_timestamp() + interval '1 millisecond')
           ON CONFLICT (event_key) DO NOTHING`,
          [input.tenantId, namespace, eventKey('assignNamespace', 'started'), eventKey('assignNamespace', 'succeeded')],
        );
        return namespace;
      });
    },

    /** Step 8 and every later status change, mirrored into the tenant row and the step log. */
    async setTenantStatus(input: { tenantId: string; status: TenantStatus; step: string; error?: string }): Promise<void> {
      const failed = input.status === 'failed';
      const log: Parameters<typeof updateRowAndLog>[3] = [input.step, failed ? 'failed' : 'succeeded', `status ${input.status}${input.error ? `: ${input.error}` : ''}`];
      // A failure records its reason; becoming active clears the last one.
      const lastError = failed ? '$7' : input.status === 'active' ? 'NULL' : 'last_error';
      return dbOnly('update tenant status', () =>
        updateRowAndLog('update tenant status', input.tenantId, `status = $6, current_step = NULL, last_error = ${lastError}`, log, [
          input.status,
          ...(failed ? [input.error ?? 'unknown error'] : []),
        ]),
      );
    },

    /** A lifecycle change failed for good: the tenant stays as it was, the reason is recorded. */
    async recordTenantError(input: { tenantId: string; step: string; error: string }): Promise<void> {
      return dbOnly('record tenant error', () =>
        updateRowAndLog('record tenant error', input.tenantId, 'last_error = $6, current_step = NULL', [input.step, 'failed', input.error], [input.error]),
      );
    },

    /**
     * Mirrors a pending deprovision deadline (a grace period) so the status API can show it;
     * `null` when the pending deprovision was cancelled.
     */
    async recordDeprovisionDeadline(input: { tenantId: string; deprovisionAt: string | null }): Promise<void> {
      return dbOnly('record deprovision deadline', async () => {
        if (input.deprovisionAt === null) {
          await sql.query(`UPDATE tenants SET metadata = metadata - 'deprovisionAt', updated_at = now() WHERE id = $1::uuid`, [input.tenantId]);
        } else {
          await sql.query(`UPDATE tenants SET metadata = metadata || jsonb_build_object('deprovisionAt', $2::text), updated_at = now() WHERE id = $1::uuid`, [
            input.tenantId,
            input.deprovisionAt,
          ]);
        }
      });
    },

    /**
     * Mirrors the lifecycle condition: a failing change being retried (`last_error` and
     * `metadata.condition`, one step-log row per failed attempt), or `null` once it recovered.
     */
    async recordTenantCondition(input: { tenantId: string; condition: TenantCondition | null }): Promise<void> {
      const c = input.condition;
      return dbOnly('record tenant condition', async () => {
        if (c === null) {
          await sql.query(`UPDATE tenants SET metadata = metadata - 'condition', last_error = NULL, updated_at = now() WHERE id = $1::uuid`, [input.tenantId]);
          return;
        }
        const error = `${c.step} failed (attempt ${c.attempts}, next at ${c.nextAttemptAt}): ${c.message}`;
        await updateRowAndLog(
          'record tenant condition',
          input.tenantId,
          `metadata = metadata || jsonb_build_object('condition', $6::jsonb), last_error = $7, current_step = NULL`,
          [c.step, 'failed', error],
          [JSON.stringify(c), error],
        );
      });
    },

    async setTenantPlan(input: { tenantId: string; plan: string }): Promise<void> {
      return dbOnly('update tenant plan', async () => {
        plan(input.plan);
        await updateRowAndLog('update tenant plan', input.tenantId, 'plan = $6, last_error = NULL', ['changePlan', 'succeeded', `plan ${input.plan}`], [input.plan]);
      });
    },
  };
}
