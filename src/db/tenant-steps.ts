/**
 * Reads of the step log (`tenant_steps`) that the API's views make, aggregated in PostgreSQL: a
 * page of 100 tenants is one statement returning one row per tenant, never every step row.
 */
import type { Db } from './client';

/**
 * Which of `steps` have succeeded in each tenant's latest attempt: a re-provisioned tenant (after
 * a failure) starts over at its latest succeeded `recordTenant`. Tenants with none are absent.
 */
export async function succeededStepsByTenant(db: Db, tenantIds: string[], steps: readonly string[]): Promise<Map<string, Set<string>>> {
  if (tenantIds.length === 0) return new Map();
  const rows = await db.$queryRaw<{ tenant_id: string; steps: string[] }[]>`
    WITH since AS (
      SELECT tenant_id, max(created_at) AS at FROM tenant_steps
       WHERE tenant_id = ANY(${tenantIds}::uuid[]) AND phase = 'succeeded' AND step = 'recordTenant'
       GROUP BY tenant_id)
    SELECT s.tenant_id::text AS tenant_id, array_agg(DISTINCT s.step) AS steps
      FROM tenant_steps s LEFT JOIN since ON since.tenant_id = s.tenant_id
     WHERE s.tenant_id = ANY(${tenantIds}::uuid[]) AND s.phase = 'succeeded' AND s.step = ANY(${[...steps]}::text[])
       AND s.created_at >= coalesce(since.at, '-infinity'::timestamptz)
     GROUP BY s.tenant_id`;
  return new Map(rows.map((r) => [r.tenant_id, new Set(r.steps)]));
}
