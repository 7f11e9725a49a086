/**
 * Transactional outbox: the webhook commits what a tenant's workflow must be told in the same
 * transaction as its decision; the dispatcher delivers it to Temporal afterwards, outside any
 * request, transaction or lock.
 *
 * - **Nothing is lost.** A row stays undelivered until Temporal accepts it. While Temporal is down,
 *   delivery is retried with capped exponential backoff (1 s doubling to `maxBackoffMs`) for as
 *   long as the outage lasts; the backlog is visible as `tenant_provisioner_outbox_pending` and
 *   the age of the oldest row.
 * - **In order, once.** Only the oldest undelivered row of a tenant is claimed, so a tenant's
 *   signals arrive in the order they were decided. A claim is a lease (`claimed_until`): several
 *   API replicas share the table without delivering a row twice at once, and a dispatcher that
 *   dies mid-delivery only delays the row until the lease expires. A delivery that succeeded but
 *   was not marked (a crash in between) is delivered again: starts are signalWithStart on the
 *   tenant's workflow id (never a second workflow) and every signal is idempotent in the workflow
 *   (resume, suspend, a plan, a deprovision request), and nothing newer for that tenant has been
 *   delivered in between, so the repeat has no second effect.
 * - **Errors a retry cannot fix** (a bug, a payload the workflow API refuses) are retried
 *   `maxAttempts` times, then the row is marked failed with the error, stops blocking its tenant
 *   and shows in `tenant_provisioner_outbox_failed_total`; reprocessing its event queues it again.
 */
import type { Logger } from 'pino';
import { tenantWorkflowId } from '../contract';
import type { Db } from '../db/client';
import type { Prisma } from '../generated/prisma/client';
import type { Dispatch } from './billing-decisions';
import { DependencyError, isDatabaseError } from './problem';
import type { StartSignal, TenantWorkflows } from './temporal';

type Tx = Prisma.TransactionClient;

/** What an outbox row carries: the dispatch and whom it is for. Never a secret. */
export type OutboxPayload = Dispatch & { tenantId: string; userId: string; customerId?: string };

/** Whom a dispatch is for. */
export type Recipient = { tenantId: string; userId: string; customerId?: string };

/** The outbox rows' payloads for a decision's dispatches, in their order. */
export function outboxPayloads(who: Recipient, dispatches: Dispatch[]): OutboxPayload[] {
  return dispatches.map((d) => ({ ...d, ...who }));
}

/** Queues dispatches inside the caller's transaction (committed, or rolled back, with its decision). */
export async function enqueue(tx: Tx, sourceId: string, who: Recipient, dispatches: Dispatch[]): Promise<number> {
  if (dispatches.length === 0) return 0;
  const { count } = await tx.outboxMessage.createMany({
    data: outboxPayloads(who, dispatches).map((payload) => ({ tenantId: who.tenantId, sourceId, payload })),
  });
  return count;
}

export interface DispatcherOptions {
  db: Db;
  workflows: TenantWorkflows;
  logger: Logger;
  /** How often to look for rows when nothing nudged the dispatcher. */
  pollMs: number;
  /** Rows (one per tenant) claimed per round. */
  batchSize: number;
  /** A claim's lease; longer than a delivery's Temporal deadline. */
  leaseMs: number;
  maxBackoffMs: number;
  maxAttempts: number;
  onDelivered?: (payload: OutboxPayload, result: string, lagMs: number) => void;
  onFailed?: (payload: OutboxPayload, error: string) => void;
}

export interface Dispatcher {
  start(): void;
  /** Looks for work now (after a webhook commit) instead of at the next poll. */
  nudge(): void;
  /** One round: claims and delivers what is due; the number of rows handled. Tests call it directly. */
  runOnce(): Promise<number>;
  /** Stops polling and waits for the round in flight. */
  stop(): Promise<void>;
}

interface ClaimedRow {
  id: bigint;
  tenant_id: string;
  payload: OutboxPayload;
  attempts: number;
  created_at: Date;
}

/** Capped exponential backoff for the n-th failed attempt (1-based). */
export function backoffMs(attempt: number, maxBackoffMs: number): number {
  return Math.min(maxBackoffMs, 1_000 * 2 ** Math.min(Math.max(attempt - 1, 0), 20));
}

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { db, logger } = options;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = true;

  async function claim(): Promise<ClaimedRow[]> {
    // The oldest undelivered row of each tenant that is due and not leased; SKIP LOCKED keeps two
    // dispatchers from waiting on each other. The claim commits at once: no lock outlives it.
    return db.$queryRaw<ClaimedRow[]>`
      UPDATE outbox SET claimed_until = now() + (${options.leaseMs}::int * interval '1 millisecond')
      WHERE id IN (
        SELECT o.id FROM outbox o
        WHERE o.delivered_at IS NULL AND o.failed_at IS NULL
          AND o.next_attempt_at <= now()
          AND (o.claimed_until IS NULL OR o.claimed_until < now())
          AND NOT EXISTS (
            SELECT 1 FROM outbox p
            WHERE p.tenant_id = o.tenant_id AND p.id < o.id AND p.delivered_at IS NULL AND p.failed_at IS NULL
          )
        ORDER BY o.id
        LIMIT ${options.batchSize}::int
        FOR UPDATE SKIP LOCKED
      )
      RETURNING id, tenant_id, payload, attempts, created_at`;
  }

  async function deliver(row: ClaimedRow): Promise<void> {
    const p = row.payload;
    try {
      const result = await send(options.workflows, p);
      await db.outboxMessage.update({ where: { id: row.id }, data: { deliveredAt: new Date(), claimedUntil: null, result, attempts: { increment: 1 }, lastError: null } });
      options.onDelivered?.(p, result, Date.now() - row.created_at.getTime());
    } catch (err) {
      const attempts = row.attempts + 1;
      const message = err instanceof Error ? err.message : String(err);
      const transient = err instanceof DependencyError || isDatabaseError(err);
      const giveUp = !transient && attempts >= options.maxAttempts;
      const next = new Date(Date.now() + backoffMs(attempts, options.maxBackoffMs));
      logger[giveUp ? 'error' : 'warn']({ outboxId: String(row.id), tenantId: row.tenant_id, workflowId: tenantWorkflowId(row.tenant_id), attempts, err: message }, giveUp ? 'outbox delivery failed for good' : 'outbox delivery failed; retrying');
      await db.outboxMessage
        .update({
          where: { id: row.id },
          data: { attempts, claimedUntil: null, nextAttemptAt: next, lastError: message.slice(0, 2000), ...(giveUp ? { failedAt: new Date() } : {}) },
        })
        .catch(() => undefined); // PostgreSQL down too: the lease expires and the row is claimed again
      if (giveUp) options.onFailed?.(p, message);
    }
  }

  async function runOnce(): Promise<number> {
    let rows: ClaimedRow[];
    try {
      rows = await claim();
    } catch (err) {
      logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'outbox: cannot claim rows (PostgreSQL unavailable?)');
      return 0;
    }
    await Promise.all(rows.map(deliver));
    return rows.length;
  }

  function schedule(ms: number): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(loop, ms);
    timer.unref();
  }

  function loop(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      let handled = 0;
      do {
        again = false;
        handled = await runOnce();
      } while (!stopped && (again || handled === options.batchSize));
    })()
      .catch((err: unknown) => logger.error({ err }, 'outbox round failed'))
      .finally(() => {
        running = undefined;
        schedule(options.pollMs);
      });
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      schedule(0);
    },
    nudge() {
      if (stopped) return;
      if (running) again = true;
      else schedule(0);
    },
    runOnce,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/** One dispatch to Temporal; the result says what happened (`signaled`, or why it was moot). */
async function send(workflows: TenantWorkflows, p: OutboxPayload): Promise<string> {
  const workflowId = tenantWorkflowId(p.tenantId);
  const who = { tenantId: p.tenantId, userId: p.userId, ...(p.customerId ? { customerId: p.customerId } : {}) };
  if (p.op === 'start') {
    const start: StartSignal =
      p.signal === 'deprovision'
        ? { signal: 'deprovision', request: { reason: p.reason, graceSeconds: p.graceSeconds } }
        : p.signal === 'suspend'
          ? { signal: 'suspend', reason: p.reason ?? 'payment failed' }
          : { signal: 'resume' };
    const reuse = p.signal === 'deprovision' ? 'never' : (p.reuse ?? 'failed-only');
    const result = await workflows.start({ ...who, plan: p.plan, start, reuse });
    return result.result === 'signaled' ? `signaled ${p.signal} (run ${result.runId})` : `${workflowId} has already finished; not started again`;
  }
  const result = await workflows.signal(
    p.tenantId,
    p.signal === 'changePlan' ? { signal: 'changePlan', plan: p.plan } : p.signal === 'suspend' ? { signal: 'suspend', reason: p.reason } : { signal: 'resume' },
  );
  return result === 'signaled' ? `signaled ${p.signal}` : `${p.signal}: ${workflowId} is not running`;
}
