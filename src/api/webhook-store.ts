/**
 * The webhook's PostgreSQL statements, in plain SQL on the pool under the Prisma client, written so
 * that an event costs few round trips. On the common path:
 *   1. one statement records the delivery (or finds it a duplicate);
 *   2. one round trip opens the transaction and takes the tenant's advisory lock;
 *   3. one statement reads everything the decision needs;
 *   4. one statement writes everything it decided;
 *   5. COMMIT.
 * At hundreds of events a second the number of statements and the ORM's work per statement, not
 * the statements' own work, is what the API spends its time on.
 */
import pg from 'pg';
import { tenantWorkflowId, type TenantStatus } from '../contract';
import type { Decision, PaymentState, SubscriptionState, TenantRow } from './billing-decisions';
import { outboxPayloads } from './outbox';
import { DependencyError } from './problem';
import { userIdForCustomer } from './ids';

/**
 * SQLSTATE classes that mean "not now" rather than "never": connection exceptions, insufficient
 * resources, operator intervention (shutdown, a cancelled or timed-out statement), and a
 * serialization failure or deadlock.
 */
const UNAVAILABLE_CLASSES = new Set(['08', '53', '57', '40']);

const { DatabaseError } = pg;

/** The errors of a database that is down or overloaded become DependencyError('postgres'): a 503. */
export function unavailable(err: unknown): unknown {
  // Not `instanceof Error`: socket errors may come from another realm (a test runner's sandbox).
  if (!err || typeof err !== 'object' || !('message' in err)) return err;
  // The server's own error carries a SQLSTATE; one outside those classes is the statement's fault
  // (a bug), a 500. Anything else (a refused or cut connection, a pool timeout) is unavailability.
  if (err instanceof DatabaseError && err.code && !UNAVAILABLE_CLASSES.has(err.code.slice(0, 2))) return err;
  return new DependencyError('postgres', `PostgreSQL: ${String(err.message)}`, { cause: err });
}

async function run<T extends pg.QueryResultRow>(client: pg.Pool | pg.PoolClient, text: string, values?: unknown[]): Promise<pg.QueryResult<T>> {
  try {
    return await client.query<T>(text, values);
  } catch (err) {
    throw unavailable(err);
  }
}

/** What a delivery found: go on deciding, or a final outcome recorded before (a duplicate). */
export type Delivery = { proceed: true } | { proceed: false; outcome: string };

/**
 * Records the event id as `received`, or counts one more delivery of an event that is still
 * `received` (an earlier delivery was interrupted). A final outcome is left alone and returned,
 * unless `force` (operator reprocessing) asks to decide again.
 */
export async function recordDelivery(pool: pg.Pool, event: { id: string; type: string; created: number }, force = false): Promise<Delivery> {
  const inserted = await run<{ outcome: string }>(
    pool,
    `INSERT INTO stripe_events (id, type, stripe_created_at, outcome)
     VALUES ($1, $2, to_timestamp($3), 'received')
     ON CONFLICT (id) DO UPDATE SET attempts = stripe_events.attempts + 1
       WHERE stripe_events.outcome = 'received' OR $4::boolean
     RETURNING outcome`,
    [event.id, event.type, event.created, force],
  );
  if (inserted.rows.length > 0) return { proceed: true };
  const seen = await run<{ outcome: string }>(pool, 'SELECT outcome FROM stripe_events WHERE id = $1', [event.id]);
  return seen.rows[0] ? { proceed: false, outcome: seen.rows[0].outcome } : { proceed: true };
}

/** What a locked decision answers, and the write that records it (sent together with COMMIT). */
export interface LockedOutcome<R> {
  result: R;
  write?: (client: pg.PoolClient) => Promise<unknown>;
}

/**
 * Runs a decision in a transaction holding the tenant's advisory lock (the same lock
 * `withTenantLock` takes through Prisma, so both paths exclude each other): `read` runs once the
 * lock is held, `decide` gets what it read and returns the answer and the write that records it.
 * The statements are issued without waiting for each other where the order allows: BEGIN, the
 * lock and the read go out together, then the write and COMMIT. On a connection that pipelines
 * (see `createDb`) that is two round trips; on one that does not, the same statements in the same
 * order. Committed when the write succeeds; rolled back when anything throws.
 */
export async function withTenantLockSql<F, R>(
  pool: pg.Pool,
  tenantId: string,
  read: (client: pg.PoolClient) => Promise<F>,
  decide: (client: pg.PoolClient, facts: F) => Promise<LockedOutcome<R>>,
): Promise<R> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw unavailable(err);
  }
  let broken: unknown;
  try {
    const [, , facts] = await Promise.all([
      run(client, 'BEGIN'),
      run(client, 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))::text AS locked', [`tenant:${tenantId}`]),
      read(client),
    ]);
    const { result, write } = await decide(client, facts);
    // An aborted transaction's COMMIT rolls back; the write's own error is what is thrown.
    await Promise.all([write?.(client), run(client, 'COMMIT')]);
    return result;
  } catch (err) {
    // A failed ROLLBACK means the connection is gone; it is thrown away, not returned to the pool.
    await client.query('ROLLBACK').catch((e: unknown) => (broken = e));
    throw err;
  } finally {
    client.release(broken instanceof Error ? broken : undefined);
  }
}

/** Everything a decision about one tenant reads, as of inside its lock. */
export interface TenantFacts {
  /** The event's outcome now: a concurrent delivery of it may have finished meanwhile. */
  eventOutcome: string | null;
  /** The customer's user, when it exists already. */
  userId: string | null;
  payment: PaymentState | null;
  tenant: (TenantRow & { userId: string | null }) | null;
  subscription: (SubscriptionState & { customerId: string | null }) | null;
}

interface FactsRow {
  event_outcome: string | null;
  user_id: string | null;
  payment_status: string | null;
  payment_event_at: Date | null;
  tenant_status: string | null;
  tenant_plan: string | null;
  tenant_user_id: string | null;
  sub_status: string | null;
  sub_plan: string | null;
  sub_last_event_at: Date | null;
  sub_tenant_id: string | null;
  sub_customer_id: string | null;
}

/** One read, under the tenant's lock, of the event, the customer, the tenant and the subscription. */
export async function readTenantFacts(
  client: pg.PoolClient,
  who: { eventId: string; customerId: string; tenantId: string; subscriptionId?: string },
): Promise<TenantFacts> {
  const { rows } = await run<FactsRow>(
    client,
    `SELECT
       (SELECT e.outcome FROM stripe_events e WHERE e.id = $1) AS event_outcome,
       u.id AS user_id, u.payment_status, u.payment_event_at,
       t.status AS tenant_status, t.plan AS tenant_plan, t.user_id AS tenant_user_id,
       s.status AS sub_status, s.plan AS sub_plan, s.last_event_at AS sub_last_event_at, s.tenant_id AS sub_tenant_id,
       su.stripe_customer_id AS sub_customer_id
     FROM (SELECT 1) AS one
     LEFT JOIN users u ON u.stripe_customer_id = $2
     LEFT JOIN tenants t ON t.id = $3::uuid
     LEFT JOIN subscriptions s ON s.stripe_subscription_id = $4
     LEFT JOIN users su ON su.id = s.user_id`,
    [who.eventId, who.customerId, who.tenantId, who.subscriptionId ?? null],
  );
  const row = rows[0];
  if (!row) throw new Error('the tenant facts query returned no row');
  return {
    eventOutcome: row.event_outcome,
    userId: row.user_id,
    payment: row.payment_status && row.payment_event_at ? { status: row.payment_status as PaymentState['status'], eventAt: row.payment_event_at } : null,
    tenant: row.tenant_status !== null ? { status: row.tenant_status as TenantStatus, plan: row.tenant_plan ?? '', userId: row.tenant_user_id } : null,
    subscription:
      row.sub_status !== null
        ? { status: row.sub_status, plan: row.sub_plan ?? '', lastEventAt: row.sub_last_event_at, tenantId: row.sub_tenant_id, customerId: row.sub_customer_id }
        : null,
  };
}

/**
 * The user of a Stripe customer, created on first sight. The insert waits for a concurrent insert
 * of the same customer to settle, and the read that follows sees whichever row won.
 */
export async function ensureUser(client: pg.PoolClient, customerId: string): Promise<string> {
  await run(client, 'INSERT INTO users (id, stripe_customer_id, updated_at) VALUES ($1::uuid, $2, now()) ON CONFLICT DO NOTHING', [userIdForCustomer(customerId), customerId]);
  const { rows } = await run<{ id: string }>(client, 'SELECT id FROM users WHERE stripe_customer_id = $1', [customerId]);
  if (!rows[0]) throw new Error(`the user of customer ${customerId} is neither there nor could it be created`);
  return rows[0].id;
}

/** Marks the event `ignored` with the reason; false when a concurrent delivery finished it first. */
export async function markIgnored(client: pg.Pool | pg.PoolClient, eventId: string, detail: string, tenantId: string | undefined, force = false): Promise<boolean> {
  const { rowCount } = await run(
    client,
    `UPDATE stripe_events SET outcome = 'ignored', detail = $2, processed_at = now(), tenant_id = COALESCE($3::uuid, tenant_id)
     WHERE id = $1 AND (outcome = 'received' OR $4::boolean)`,
    [eventId, detail.slice(0, 2000), tenantId ?? null, force],
  );
  return (rowCount ?? 0) > 0;
}

/**
 * Writes what a decision applies, in one statement: the tenant row to create, the subscription's
 * state, the customer's payment state, the outbox rows (in the decision's order), and the event's
 * outcome. Each data-modifying CTE runs exactly once; it does nothing when its input is NULL or
 * empty. Foreign keys are checked at the end of the statement, so a new tenant row and the
 * subscription pointing at it land together.
 */
export async function applyDecision(
  client: pg.PoolClient,
  input: { eventId: string; tenantId: string; userId: string; customerId: string; subscriptionId?: string; decision: Decision; outcome: 'queued' | 'recorded' },
): Promise<void> {
  const { decision, tenantId, userId, customerId } = input;
  const create = decision.createTenant;
  const sub = input.subscriptionId ? decision.subscription : undefined;
  const payment = decision.payment;
  const payloads = outboxPayloads({ tenantId, userId, customerId }, decision.dispatches);
  await run(
    client,
    `WITH new_tenant AS (
       INSERT INTO tenants (id, user_id, plan, status, workflow_id, metadata, updated_at)
       SELECT $2::uuid, $3::uuid, $5::text, $6::text, $7::text, jsonb_build_object('stripeCustomerId', $4::text), now()
       WHERE $5::text IS NOT NULL
       ON CONFLICT DO NOTHING
     ), subscription AS (
       INSERT INTO subscriptions (id, stripe_subscription_id, user_id, tenant_id, plan, status, last_event_at, updated_at)
       SELECT gen_random_uuid(), $8::text, $3::uuid, $9::uuid, $10::text, $11::text, $12::timestamptz, now()
       WHERE $8::text IS NOT NULL
       ON CONFLICT (stripe_subscription_id) DO UPDATE
       SET tenant_id = EXCLUDED.tenant_id, plan = EXCLUDED.plan, status = EXCLUDED.status, last_event_at = EXCLUDED.last_event_at, updated_at = now()
     ), payment AS (
       UPDATE users SET payment_status = $13::text, payment_event_at = $14::timestamptz, updated_at = now()
       WHERE id = $3::uuid AND $13::text IS NOT NULL
     ), outbox_rows AS (
       INSERT INTO outbox (tenant_id, source_id, payload)
       SELECT $2::uuid, $1::text, a.p FROM jsonb_array_elements($15::jsonb) WITH ORDINALITY AS a(p, n) ORDER BY a.n
     )
     UPDATE stripe_events
     SET outcome = $16::text, tenant_id = $2::uuid, detail = $17::text, processed_at = now()
     WHERE id = $1::text`,
    [
      input.eventId,
      tenantId,
      userId,
      customerId,
      create?.plan ?? null,
      create?.status ?? null,
      tenantWorkflowId(tenantId),
      sub ? input.subscriptionId : null,
      sub?.tenantId ?? null,
      sub?.plan ?? null,
      sub?.status ?? null,
      sub?.lastEventAt ?? null,
      payment?.status ?? null,
      payment?.eventAt ?? null,
      JSON.stringify(payloads),
      input.outcome,
      decision.detail.slice(0, 2000),
    ],
  );
}
