/**
 * Reads over real HTTP and PostgreSQL: the service token lists tenants by customer, user, status
 * and plan, a page at a time, and reads any one tenant; a user's own list pages past 100 instead
 * of stopping there.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { tenantWorkflowId } from '../../src/contract';
import type { TenantWorkflows } from '../../src/api/temporal';
import { createTenantViews } from '../../src/api/tenants';
import { SERVICE_TOKEN, get, startApi, userToken, type HttpAnswer, type RunningApi } from './api-harness';
import { testDb, uniqueTaskQueue } from './helpers';

interface Page {
  tenants: { tenantId: string; status: string; plan: string }[];
  nextCursor: string | null;
}

describe('tenant reads (real API and PostgreSQL)', () => {
  const db = testDb();
  let api: RunningApi;
  beforeAll(async () => {
    api = await startApi({ taskQueue: uniqueTaskQueue('reads') });
  });
  afterAll(async () => {
    await api.close();
    await db.$disconnect();
  });

  /** Settled rows only (no live Temporal query), each created a second after the one before. */
  let clock = Date.now() - 3_600_000;
  async function seed(userId: string, n: number, status = 'active', plan = 'starter'): Promise<string[]> {
    const ids = Array.from({ length: n }, () => randomUUID());
    await db.tenant.createMany({
      data: ids.map((id) => ({ id, userId, plan, status, workflowId: tenantWorkflowId(id), createdAt: new Date((clock += 1000)) })),
    });
    return ids;
  }

  /** Pages through `path`: on the admin port for the service token, else on the public port. */
  async function pages(path: string, token: string): Promise<{ ids: string[]; pages: number }> {
    const at = token === SERVICE_TOKEN ? { url: api.adminUrl } : api;
    const ids: string[] = [];
    let cursor: string | null = null;
    let n = 0;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const res: HttpAnswer<Page> = await get<Page>(at, `${path}${cursor ? `${sep}cursor=${cursor}` : ''}`, token);
      expect(res.status).toBe(200);
      ids.push(...res.body.tenants.map((t) => t.tenantId));
      cursor = res.body.nextCursor;
      n += 1;
    } while (cursor && n < 20);
    return { ids, pages: n };
  }

  it("pages a user's own list past 100 tenants", async () => {
    const user = await db.user.create({ data: { id: randomUUID() } });
    const ids = await seed(user.id, 105);
    const token = await userToken(user.id);
    const first = await get<Page & { userId: string }>(api, '/api/tenants/status', token);
    expect(first.body.tenants).toHaveLength(100);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    expect(await pages('/api/tenants/status', token)).toEqual({ ids, pages: 2 });
    expect(await pages('/api/tenants/status?limit=10', token)).toEqual({ ids, pages: 11 });

    const bad = await get(api, '/api/tenants/status?cursor=bm9wZQ', token);
    expect(bad.status).toBe(400);
    expect(await get(api, '/api/tenants/status?limit=101', token).then((r) => r.status)).toBe(400);
  });

  it('lets the service list by customer, user, status and plan, and read any tenant', async () => {
    const customer = `cus_reads_${randomBytes(6).toString('hex')}`;
    const alice = await db.user.create({ data: { id: randomUUID(), stripeCustomerId: customer } });
    const bob = await db.user.create({ data: { id: randomUUID() } });
    const active = await seed(alice.id, 3, 'active', 'pro');
    const failed = await seed(alice.id, 2, 'failed', 'starter');
    await seed(bob.id, 2);

    expect(await pages(`/api/tenants?customerId=${customer}&limit=2`, SERVICE_TOKEN)).toEqual({ ids: [...active, ...failed], pages: 3 });
    expect((await pages(`/api/tenants?userId=${alice.id}&status=failed`, SERVICE_TOKEN)).ids).toEqual(failed);
    expect((await pages(`/api/tenants?customerId=${customer}&plan=pro`, SERVICE_TOKEN)).ids).toEqual(active);

    const admin = { url: api.adminUrl };
    const one = await get<{ tenantId: string; status: string }>(admin, `/api/tenants/${failed[0]}`, SERVICE_TOKEN);
    expect([one.status, one.body.tenantId, one.body.status]).toEqual([200, failed[0], 'failed']);
    expect((await get(admin, `/api/tenants/${randomUUID()}`, SERVICE_TOKEN)).status).toBe(404);

    // A user may not list by customer; unknown filters are refused, not ignored.
    expect((await get(admin, `/api/tenants?customerId=${customer}`, await userToken(bob.id))).status).toBe(403);
    expect((await get(admin, '/api/tenants?colour=blue', SERVICE_TOKEN)).status).toBe(400);
    expect((await get(admin, '/api/tenants?status=sleeping', SERVICE_TOKEN)).status).toBe(400);
  });

  it('answers a page of tenants in flight from PostgreSQL: one statement for their steps, no Temporal query', async () => {
    const user = await db.user.create({ data: { id: randomUUID() } });
    const ids = await seed(user.id, 100, 'provisioning');
    // Each has a step log; the second tenant failed once and was provisioned again, so only the
    // steps after its latest recordTenant count.
    const at = (s: number) => new Date(Date.now() - 600_000 + s * 1000);
    await db.tenantStep.createMany({
      data: ids.flatMap((id, i) => [
        { tenantId: id, eventKey: `${id}/1/recordTenant`, step: 'recordTenant', phase: 'succeeded', createdAt: at(1) },
        { tenantId: id, eventKey: `${id}/1/assignNamespace`, step: 'assignNamespace', phase: 'succeeded', createdAt: at(2) },
        ...(i === 1
          ? [
              { tenantId: id, eventKey: `${id}/1/ensureNamespace`, step: 'ensureNamespace', phase: 'succeeded', createdAt: at(3) },
              { tenantId: id, eventKey: `${id}/2/recordTenant`, step: 'recordTenant', phase: 'succeeded', createdAt: at(10) },
            ]
          : []),
      ]),
    });
    let queries = 0;
    const views = createTenantViews({ db, statusQueryTimeoutMs: 500, workflows: { query: () => { queries += 1; return Promise.resolve(undefined); } } as unknown as TenantWorkflows });
    const rows = await db.tenant.findMany({ where: { userId: user.id }, orderBy: { createdAt: 'asc' } });

    const page = await views(rows);
    expect(queries).toBe(0);
    expect(page).toHaveLength(100);
    expect(page[0]?.progress.completedSteps).toEqual(['recordTenant', 'assignNamespace']);
    expect(page[1]?.progress.completedSteps).toEqual(['recordTenant']);
    expect(page.every((v) => v.source === 'postgres')).toBe(true);
    // One tenant read alone still asks its workflow (a short deadline; PostgreSQL answers otherwise).
    await views(rows.slice(0, 1));
    expect(queries).toBe(1);
  });
});
