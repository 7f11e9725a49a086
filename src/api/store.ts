/**
 * PostgreSQL helpers of the internal endpoints. Everything that decides about one tenant runs
 * inside `withTenantLock`, or the webhook's `withTenantLockSql` (webhook-store.ts), which takes
 * the same lock, so two deliveries (or a delivery and an internal request) for the same tenant
 * never interleave their read-decide-dispatch-write steps.
 */
import type { Db } from '../db/client';
import type { Prisma } from '../generated/prisma/client';
import type { TenantStatus } from '../contract';
import { tenantWorkflowId } from '../contract';

export type Tx = Prisma.TransactionClient;

/** Pool wait and total time of a locked section; Temporal calls inside it have their own deadlines. */
const LOCK_TX_OPTIONS = { maxWait: 10_000, timeout: 30_000 };

/**
 * Runs `fn` in a transaction holding a per-tenant advisory lock (released at commit or rollback).
 * If `fn` throws, everything it wrote is rolled back.
 */
export function withTenantLock<T>(db: Db, tenantId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.$transaction(async (tx) => {
    // ::text because Prisma cannot read a `void` column.
    await tx.$queryRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`tenant:${tenantId}`}, 0))::text AS locked`;
    return fn(tx);
  }, LOCK_TX_OPTIONS);
}

/**
 * The tenant row, created before its workflow starts so that `subscriptions.tenant_id` has a target
 * and the user sees the tenant at once. The workflow's recordTenant step finds it and carries on.
 */
export async function ensureTenantRow(
  tx: Tx,
  row: { tenantId: string; userId: string; plan: string; status: Extract<TenantStatus, 'provisioning' | 'deprovisioning'>; customerId?: string },
): Promise<void> {
  await tx.tenant.createMany({
    data: [
      {
        id: row.tenantId,
        userId: row.userId,
        plan: row.plan,
        status: row.status,
        workflowId: tenantWorkflowId(row.tenantId),
        metadata: row.customerId ? { stripeCustomerId: row.customerId } : {},
      },
    ],
    skipDuplicates: true,
  });
}

/** Runs `fn` but gives up after `ms`: for reads that must not hold a response hostage (readiness, metrics). */
export async function withTimeout<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([fn(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
