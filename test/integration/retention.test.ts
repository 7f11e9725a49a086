/**
 * Retention against the real PostgreSQL, in a throw-away database of its own (a prune with a cutoff
 * in the future must not touch the rows other tests are using): old final rows go, rows still in
 * use stay whatever their age, each tenant keeps its newest steps, runs are bounded in batches,
 * and two processes never prune at once.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { dropDatabase, ensureDatabase, migrate } from '../../src/db/migrate';
import { createRetentionJob, pruneExpired, type RetentionPolicy } from '../../src/db/retention';
import { env } from './helpers';

const DAY = 86_400_000;
const policy: RetentionPolicy = {
  eventsMaxAgeMs: 30 * DAY,
  outboxMaxAgeMs: 30 * DAY,
  idempotencyMaxAgeMs: 2 * DAY,
  stepsMaxAgeMs: 180 * DAY,
  stepsKeepPerTenant: 3,
  batchSize: 1_000,
  maxBatches: 20,
};

let url: string;
let pool: pg.Pool;

beforeAll(async () => {
  const u = new URL(env('DATABASE_URL'));
  u.pathname = `/${decodeURIComponent(u.pathname.slice(1)).slice(0, 40)}_ret_${randomBytes(4).toString('hex')}`;
  url = u.toString();
  await ensureDatabase(url);
  await migrate(url);
  pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5_000, statement_timeout: 15_000 });
});

afterAll(async () => {
  await pool?.end();
  if (url) await dropDatabase(url);
});

beforeEach(async () => {
  await pool.query('TRUNCATE stripe_events, outbox, idempotency_keys, tenant_steps, tenants CASCADE');
});

const ago = (days: number) => new Date(Date.now() - days * DAY);

async function event(id: string, outcome: string, processedDaysAgo: number | null): Promise<void> {
  await pool.query(
    `INSERT INTO stripe_events (id, type, stripe_created_at, received_at, outcome, processed_at) VALUES ($1, 'customer.subscription.updated', $2, $2, $3, $4)`,
    [id, ago(processedDaysAgo ?? 400), outcome, processedDaysAgo === null ? null : ago(processedDaysAgo)],
  );
}

async function outbox(tenantId: string, sourceId: string, state: 'delivered' | 'failed' | 'pending', daysAgo: number): Promise<void> {
  await pool.query(
    `INSERT INTO outbox (tenant_id, source_id, payload, created_at, delivered_at, failed_at) VALUES ($1, $2, '{}'::jsonb, $3, $4, $5)`,
    [tenantId, sourceId, ago(daysAgo), state === 'delivered' ? ago(daysAgo) : null, state === 'failed' ? ago(daysAgo) : null],
  );
}

async function tenantWithSteps(stepDaysAgo: number[]): Promise<string> {
  const id = randomUUID();
  await pool.query(`INSERT INTO tenants (id, status, plan, workflow_id, updated_at) VALUES ($1, 'active', 'starter', $2, now())`, [id, `tenant-${id}`]);
  for (const [i, days] of stepDaysAgo.entries()) {
    await pool.query(`INSERT INTO tenant_steps (tenant_id, event_key, step, phase, created_at) VALUES ($1, $2, 'deployApp', 'succeeded', $3)`, [id, `${id}:${i}`, ago(days)]);
  }
  return id;
}

const ids = async (sql: string): Promise<string[]> => (await pool.query<{ id: string }>(sql)).rows.map((r) => String(r.id)).sort();

describe('retention', () => {
  it('deletes old final events and settled outbox rows, and keeps what is still in use', async () => {
    const tenant = randomUUID();
    await event('evt_old_queued', 'queued', 40); // final, old: goes
    await event('evt_old_ignored', 'ignored', 31); // final, old: goes
    await event('evt_new_queued', 'queued', 5); // final, recent: stays
    await event('evt_old_received', 'received', null); // not handed on yet: stays
    await event('evt_old_pending_outbox', 'queued', 60); // its outbox row is pending: stays
    await outbox(tenant, 'evt_old_queued', 'delivered', 40); // settled, old: goes
    await outbox(tenant, 'evt_x', 'failed', 45); // given up, old: goes
    await outbox(tenant, 'evt_new_queued', 'delivered', 5); // settled, recent: stays
    await outbox(tenant, 'evt_old_pending_outbox', 'pending', 60); // pending: stays
    await pool.query(`INSERT INTO idempotency_keys (key, request_hash, created_at, updated_at) VALUES ('old', 'h', $1, $1), ('new', 'h', $2, $2)`, [ago(3), ago(1)]);

    const result = await pruneExpired(pool, policy);

    expect(result).toMatchObject({ ran: true, stripe_events: 2, outbox: 2, idempotency_keys: 1 });
    await expect(ids('SELECT id FROM stripe_events')).resolves.toStrictEqual(['evt_new_queued', 'evt_old_pending_outbox', 'evt_old_received']);
    await expect(ids('SELECT source_id AS id FROM outbox')).resolves.toStrictEqual(['evt_new_queued', 'evt_old_pending_outbox']);
    await expect(ids('SELECT key AS id FROM idempotency_keys')).resolves.toStrictEqual(['new']);
    // A second run finds nothing more: retention is idempotent.
    await expect(pruneExpired(pool, policy)).resolves.toMatchObject({ stripe_events: 0, outbox: 0, idempotency_keys: 0, tenant_steps: 0 });
  });

  it("keeps each tenant's newest steps, however old, and deletes older steps past the age", async () => {
    const quiet = await tenantWithSteps([400, 390, 380, 370, 360]); // all old: the newest 3 stay
    const busy = await tenantWithSteps([400, 300, 200, 10, 5, 1]); // 3 recent: every old one goes
    const young = await tenantWithSteps([3, 2, 1, 0]); // nothing old

    const result = await pruneExpired(pool, policy);

    expect(result.tenant_steps).toBe(5);
    const count = async (t: string) => Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM tenant_steps WHERE tenant_id = $1', [t])).rows[0]?.n);
    await expect(count(quiet)).resolves.toBe(3);
    await expect(count(busy)).resolves.toBe(3);
    await expect(count(young)).resolves.toBe(4);
    const oldestKept = await pool.query<{ t: Date }>('SELECT min(created_at) AS t FROM tenant_steps WHERE tenant_id = $1', [quiet]);
    expect(oldestKept.rows[0]?.t.getTime()).toBeGreaterThan(ago(381).getTime());
  });

  it('deletes in bounded batches: a backlog larger than one run shrinks over several runs', async () => {
    await pool.query(
      `INSERT INTO stripe_events (id, type, stripe_created_at, outcome, processed_at)
       SELECT 'evt_bulk_' || g, 'invoice.paid', $1, 'recorded', $1 FROM generate_series(1, 250) g`,
      [ago(90)],
    );
    const small = { ...policy, batchSize: 50, maxBatches: 2 };
    await expect(pruneExpired(pool, small)).resolves.toMatchObject({ stripe_events: 100 });
    await expect(pruneExpired(pool, small)).resolves.toMatchObject({ stripe_events: 100 });
    await expect(pruneExpired(pool, small)).resolves.toMatchObject({ stripe_events: 50 });
    await expect(ids('SELECT id FROM stripe_events')).resolves.toStrictEqual([]);
  });

  it('runs in one process at a time: a run while another holds the lock deletes nothing', async () => {
    await event('evt_locked', 'queued', 90);
    const holder = await pool.connect();
    try {
      await holder.query("SELECT pg_advisory_lock(hashtextextended('tenant-provisioner:retention', 0))");
      await expect(pruneExpired(pool, policy)).resolves.toMatchObject({ ran: false, stripe_events: 0 });
      await holder.query("SELECT pg_advisory_unlock(hashtextextended('tenant-provisioner:retention', 0))");
    } finally {
      holder.release();
    }
    await expect(pruneExpired(pool, policy)).resolves.toMatchObject({ ran: true, stripe_events: 1 });
  });

  it('the job prunes on its interval and reports each run', async () => {
    await event('evt_job', 'ignored', 90);
    const runs: number[] = [];
    const job = createRetentionJob({ pool, policy, intervalMs: 100, onRun: (r) => runs.push(r.stripe_events), onError: (err) => { throw err; } });
    job.start();
    try {
      const deadline = Date.now() + 10_000;
      while (runs.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    } finally {
      await job.stop();
    }
    expect(runs.slice(0, 2)).toStrictEqual([1, 0]);
    await expect(ids('SELECT id FROM stripe_events')).resolves.toStrictEqual([]);
  });
});
