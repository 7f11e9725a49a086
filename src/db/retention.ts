/**
 * Retention: deletes the rows that only ever grow — final Stripe events, settled outbox rows,
 * idempotency keys and old step-log rows — once they are older than their configured age.
 *
 * What is never deleted, whatever its age:
 * - a Stripe event still in outcome `received` (not handed on yet: reprocess needs it), or one
 *   whose outbox row is still pending (the dispatcher reports delivery against it);
 * - an outbox row that is neither delivered nor given up (it still blocks its tenant's later rows);
 * - the newest `stepsKeepPerTenant` step rows of each tenant, so a tenant quiet for a year still
 *   shows how it got to its state.
 * Events are kept far longer than Stripe redelivers (3 days in live mode), so deduplication by
 * event id is unaffected.
 *
 * Deletes run in batches of `batchSize` rows (short transactions, no long lock on a busy table)
 * and at most `maxBatches` batches per table per run, so one run is bounded in time; a backlog
 * shrinks over several runs. One run at a time across every process: a session advisory lock.
 */
import type pg from 'pg';

export interface RetentionPolicy {
  /** Final Stripe events older than this are deleted (by processed_at). */
  eventsMaxAgeMs: number;
  /** Delivered or given-up outbox rows older than this are deleted. */
  outboxMaxAgeMs: number;
  /** Idempotency keys older than this are deleted (a retry with the key then runs again). */
  idempotencyMaxAgeMs: number;
  /** Step-log rows older than this are deleted, except the newest `stepsKeepPerTenant` per tenant. */
  stepsMaxAgeMs: number;
  stepsKeepPerTenant: number;
  batchSize: number;
  maxBatches: number;
}

export type RetentionTable = 'stripe_events' | 'outbox' | 'idempotency_keys' | 'tenant_steps';

export type PruneResult = Record<RetentionTable, number> & {
  /** False when another process held the retention lock: this run deleted nothing. */
  ran: boolean;
};

/** Advisory lock key of retention runs (hashtextextended of a fixed name, like the tenant locks). */
const LOCK_NAME = 'tenant-provisioner:retention';

/** One statement per table: deletes up to $2 rows older than the cutoff $1, returns how many. */
const DELETES: Record<RetentionTable, string> = {
  stripe_events: `
    WITH doomed AS (
      SELECT e.id FROM stripe_events e
       WHERE e.outcome <> 'received' AND e.processed_at IS NOT NULL AND e.processed_at < $1
         AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.source_id = e.id AND o.delivered_at IS NULL AND o.failed_at IS NULL)
       ORDER BY e.processed_at LIMIT $2)
    DELETE FROM stripe_events WHERE id IN (SELECT id FROM doomed)`,
  outbox: `
    WITH doomed AS (
      SELECT id FROM outbox
       WHERE coalesce(delivered_at, failed_at) < $1
       ORDER BY id LIMIT $2)
    DELETE FROM outbox WHERE id IN (SELECT id FROM doomed)`,
  idempotency_keys: `
    WITH doomed AS (
      SELECT key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2)
    DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM doomed)`,
  // Ranked among all of the tenant's rows (newest first), but only tenants with an old row are read.
  tenant_steps: `
    WITH ranked AS (
      SELECT id, created_at, row_number() OVER (PARTITION BY tenant_id ORDER BY id DESC) AS newer
        FROM tenant_steps
       WHERE tenant_id IN (SELECT DISTINCT tenant_id FROM tenant_steps WHERE created_at < $1))
    DELETE FROM tenant_steps
     WHERE id IN (SELECT id FROM ranked WHERE newer > $3 AND created_at < $1 ORDER BY id LIMIT $2)`,
};

const MAX_AGES: Record<RetentionTable, keyof RetentionPolicy> = {
  stripe_events: 'eventsMaxAgeMs',
  outbox: 'outboxMaxAgeMs',
  idempotency_keys: 'idempotencyMaxAgeMs',
  tenant_steps: 'stepsMaxAgeMs',
};

export const RETENTION_TABLES = Object.keys(DELETES) as RetentionTable[];

/** Deletes what the policy no longer keeps (see the module comment); `now` is for tests. */
export async function pruneExpired(pool: pg.Pool, policy: RetentionPolicy, now: Date = new Date()): Promise<PruneResult> {
  const result: PruneResult = { ran: false, stripe_events: 0, outbox: 0, idempotency_keys: 0, tenant_steps: 0 };
  const client = await pool.connect();
  try {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked', [LOCK_NAME]);
    if (!rows[0]?.locked) return result;
    result.ran = true;
    try {
      for (const table of RETENTION_TABLES) {
        const cutoff = new Date(now.getTime() - policy[MAX_AGES[table]]);
        const params: unknown[] = table === 'tenant_steps' ? [cutoff, policy.batchSize, policy.stepsKeepPerTenant] : [cutoff, policy.batchSize];
        for (let batch = 0; batch < policy.maxBatches; batch++) {
          const { rowCount } = await client.query(DELETES[table], params);
          result[table] += rowCount ?? 0;
          if ((rowCount ?? 0) < policy.batchSize) break;
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [LOCK_NAME]);
    }
    return result;
  } finally {
    client.release();
  }
}

export interface RetentionJobOptions {
  pool: pg.Pool;
  policy: RetentionPolicy;
  intervalMs: number;
  onRun: (result: PruneResult) => void;
  onError: (err: unknown) => void;
}

export interface RetentionJob {
  start(): void;
  /** Waits for a run in progress, then stops. */
  stop(): Promise<void>;
  /** Runs once now (the timer keeps its schedule). */
  runOnce(): Promise<PruneResult>;
}

/** Runs `pruneExpired` every `intervalMs` (first run one interval after start), never two at once. */
export function createRetentionJob(options: RetentionJobOptions): RetentionJob {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<PruneResult> | undefined;
  const runOnce = (): Promise<PruneResult> => {
    running ??= pruneExpired(options.pool, options.policy).finally(() => {
      running = undefined;
    });
    return running;
  };
  return {
    start() {
      if (timer || options.intervalMs <= 0) return;
      timer = setInterval(() => {
        runOnce().then(options.onRun, options.onError);
      }, options.intervalMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running?.catch(() => undefined);
    },
    runOnce,
  };
}
