/**
 * tenantctl as an operator runs it: the built CLI (dist/cli/tenantctl.js) spawned against a real
 * API process (dist/api/server.js), a real worker (PostgreSQL, Kubernetes, Helm) and Temporal.
 * Checks output, --json documents and the exit codes scripts rely on.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { createActivities } from '../../src/activities';
import { EXIT } from '../../src/cli/tenantctl';
import { JWT, WEBHOOK_SECRET, deprovisionLeftovers, event, postEvent, workflowsPath } from './api-harness';
import { buildDist } from './build-dist';
import { ROOT, env, eventually, realDeps, testDb, testKube, uniqueTaskQueue, useTemporalClient, withWorker } from './helpers';

const DIST = path.join(ROOT, 'dist');
const SERVICE_TOKEN = randomBytes(32).toString('base64url');

interface ApiProcess {
  child: ChildProcess;
  apiUrl: string;
  adminUrl: string;
  output: () => string;
}

/** `node dist/api/server.js` on free ports; resolves once its "API listening" line names them. */
async function spawnApi(taskQueue: string): Promise<ApiProcess> {
  const child = spawn(process.execPath, [path.join(DIST, 'api/server.js')], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: env('DATABASE_URL'),
      TEMPORAL_ADDRESS: env('TEMPORAL_ADDRESS'),
      TASK_QUEUE: taskQueue,
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      JWT_SECRET: JWT.secret,
      JWT_ISSUER: JWT.issuer,
      JWT_AUDIENCE: JWT.audience,
      SERVICE_TOKEN,
      STRIPE_API_KEY: 'sk_test_123',
      STRIPE_API_BASE: env('STRIPE_MOCK_URL'),
      HOST: '127.0.0.1',
      PORT: '0',
      ADMIN_HOST: '127.0.0.1',
      ADMIN_PORT: '0',
      SHUTDOWN_DELAY_MS: '0',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const ports = await eventually(
    () => {
      if (child.exitCode !== null) throw new Error(`the API exited with ${child.exitCode}: ${out}`);
      for (const line of out.split('\n')) {
        if (!line.includes('"API listening"')) continue;
        return Promise.resolve(JSON.parse(line) as { port: number; adminPort: number });
      }
      return Promise.resolve(undefined);
    },
    30_000,
    'the API process to listen',
  );
  return { child, apiUrl: `http://127.0.0.1:${ports.port}`, adminUrl: `http://127.0.0.1:${ports.adminPort}`, output: () => out };
}

describe('tenantctl against the real stack', () => {
  const db = testDb();
  const temporal = useTemporalClient();
  const taskQueue = uniqueTaskQueue('cli');
  const tenants = new Set<string>();
  let api: ApiProcess;

  beforeAll(async () => {
    // The CLI and the API run as built JavaScript, the way operators and the image run them.
    await buildDist();
    api = await spawnApi(taskQueue);
  }, 180_000);

  afterAll(async () => {
    api?.child.kill('SIGTERM');
    if (api?.child.exitCode === null) await new Promise((r) => api.child.once('exit', r));
    await db.$disconnect();
  });

  async function tenantctl(args: string[], options: { token?: string | null; adminUrl?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const token = options.token === undefined ? SERVICE_TOKEN : options.token;
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [path.join(DIST, 'cli/tenantctl.js'), ...args],
        {
          env: { PATH: process.env.PATH, TENANTCTL_ADMIN_URL: options.adminUrl ?? api.adminUrl, ...(token ? { TENANTCTL_TOKEN: token } : {}) },
          timeout: 240_000,
        },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  }
  const json = <T>(r: { stdout: string }) => JSON.parse(r.stdout) as T;
  const ndjson = (r: { stdout: string }) => r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

  it('provisions, watches a failure, retries it once fixed, lists, shows, suspends, resumes, shows a failing change and deprovisions', async () => {
    const customer = `cus_cli_${randomBytes(6).toString('hex')}`;
    const user = await db.user.create({ data: { id: randomUUID(), stripeCustomerId: customer } });
    let tenantId = '';

    try {
      // A tenant chart that the API server rejects: provisioning fails and everything is undone.
      const broken = realDeps(db, { chart: path.join(ROOT, 'test/fixtures/charts/broken') });
      await withWorker({ taskQueue, workflowsPath, activities: createActivities(broken) }, async () => {
        const created = await tenantctl(['--json', 'provision', '--user', user.id, '--plan', 'starter']);
        expect(created).toMatchObject({ code: EXIT.ok });
        tenantId = json<{ tenantId: string }>(created).tenantId;
        tenants.add(tenantId);

        const watched = await tenantctl(['--json', 'watch', tenantId, '--interval', '300']);
        expect(watched.code).toBe(EXIT.failed);
        const events = ndjson(watched);
        expect(events.at(-1)).toMatchObject({ type: 'done', tenant: { status: 'failed' } });
        expect(events.filter((e) => e.type === 'step').map((e) => `${String(e.step)}:${String(e.phase)}`)).toEqual(expect.arrayContaining(['deployApp:failed', 'deleteNamespace:compensated']));
        expect(watched.stderr).toMatch(/failed: deployApp failed/);
      });

      // The cause is fixed (a working chart); the operator retries.
      await withWorker({ taskQueue, workflowsPath, activities: createActivities(realDeps(db)) }, async () => {
        const retried = await tenantctl(['retry', tenantId]);
        expect(retried.code).toBe(EXIT.ok);
        expect(retried.stdout).toContain(`tenantctl watch ${tenantId}`);
        const watched = await tenantctl(['watch', tenantId, '--interval', '300']);
        expect({ code: watched.code, stderr: watched.stderr }).toEqual({ code: EXIT.ok, stderr: '' });
        expect(watched.stdout).toContain(`${tenantId} is active`);
        expect(watched.stdout).toMatch(/markActive\s+succeeded/);

        // A second retry is refused: the tenant is no longer failed.
        const again = await tenantctl(['--json', 'retry', tenantId]);
        expect(again.code).toBe(EXIT.conflict);
        expect(JSON.parse(again.stderr)).toMatchObject({ error: { exitCode: EXIT.conflict, problem: { status: 409 } } });

        // list: by customer, by status with paging, and the human table.
        const listed = json<{ tenants: { tenantId: string; status: string }[]; nextCursor: string | null }>(await tenantctl(['--json', 'list', '--customer', customer]));
        expect(listed).toEqual({ tenants: [expect.objectContaining({ tenantId, status: 'active' })], nextCursor: null });
        const paged = json<{ tenants: { tenantId: string }[] }>(await tenantctl(['--json', 'list', '--user', user.id, '--limit', '1', '--all']));
        expect(paged.tenants.map((t) => t.tenantId)).toEqual([tenantId]);
        const table = await tenantctl(['list', '--customer', customer]);
        expect(table.stdout.split('\n')[0]).toMatch(/^TENANT\s+STATUS\s+PLAN\s+STEP\s+PROGRESS\s+CONDITION\s+UPDATED$/);
        expect(table.stdout).toMatch(new RegExp(`${tenantId}\\s+active\\s+starter\\s+\\S+\\s+8/8`));

        // show: the step log of both attempts, the user and the customer.
        const shown = await tenantctl(['show', tenantId]);
        expect(shown.code).toBe(EXIT.ok);
        expect(shown.stdout).toMatch(/^status\s+active$/m);
        expect(shown.stdout).toContain(`(Stripe ${customer})`);
        expect(shown.stdout).toMatch(/deployApp\s+failed/);
        expect(shown.stdout).toMatch(/markActive\s+succeeded/);
        expect(shown.stdout).toMatch(/^deprovision\s+none pending$/m);

        // suspend / resume through the admin port.
        expect((await tenantctl(['suspend', tenantId, '--reason', 'cli test'])).code).toBe(EXIT.ok);
        expect((await tenantctl(['watch', tenantId, '--until', 'suspended', '--interval', '300'])).code).toBe(EXIT.ok);
        expect((await tenantctl(['resume', tenantId])).code).toBe(EXIT.ok);
        expect((await tenantctl(['watch', tenantId, '--until', 'active', '--interval', '300'])).code).toBe(EXIT.ok);

        // A deprovision in its grace period shows as pending, and can be called off.
        expect((await tenantctl(['deprovision', tenantId, '--grace', '3600', '--reason', 'customer left'])).code).toBe(EXIT.ok);
        const pending = await eventually(async () => {
          const d = json<{ tenant: { deprovisionAt?: string } }>(await tenantctl(['--json', 'show', tenantId]));
          return d.tenant.deprovisionAt ? d : undefined;
        }, 30_000, 'the pending deprovision to show');
        expect(Date.parse(pending.tenant.deprovisionAt!)).toBeGreaterThan(Date.now() + 3_000_000);
        expect((await tenantctl(['show', tenantId])).stdout).toMatch(/^deprovision\s+pending, at .* \(tenantctl cancel-deprovision /m);
        expect((await tenantctl(['cancel-deprovision', tenantId])).code).toBe(EXIT.ok);
        await eventually(async () => (await tenantctl(['show', tenantId])).stdout.match(/^deprovision\s+none pending$/m), 30_000, 'the deprovision to be cancelled');
        expect(json<{ tenant: { status: string } }>(await tenantctl(['--json', 'show', tenantId])).tenant.status).toBe('active');

        // Errors a script can tell apart.
        expect((await tenantctl(['change-plan', tenantId, 'no-such-plan'])).code).toBe(EXIT.usage);
        expect((await tenantctl(['show', randomUUID()])).code).toBe(EXIT.notFound);
        expect((await tenantctl(['show', 'not-a-uuid'])).code).toBe(EXIT.usage);
        expect((await tenantctl(['frobnicate'])).code).toBe(EXIT.usage);
        const noToken = await tenantctl(['list'], { token: null });
        expect(noToken.code).toBe(EXIT.auth);
        expect(noToken.stderr).toMatch(/TENANTCTL_TOKEN/);
        expect((await tenantctl(['list'], { token: randomBytes(32).toString('base64url') })).code).toBe(EXIT.auth);
        const down = await tenantctl(['list'], { adminUrl: 'http://127.0.0.1:9' });
        expect(down.code).toBe(EXIT.unavailable);
        expect(down.stderr).toMatch(/cannot reach the admin API/);

        // A lifecycle change that cannot succeed (its namespace deleted by hand) shows as a condition.
        await testKube().delete({ apiVersion: 'v1', kind: 'Namespace', name: `tenant-${tenantId}` });
        expect((await tenantctl(['suspend', tenantId])).code).toBe(EXIT.ok);
        const failing = await eventually(async () => {
          const d = json<{ tenant: { condition?: { type?: string; step?: string } } }>(await tenantctl(['--json', 'show', tenantId]));
          return d.tenant.condition ? d.tenant.condition : undefined;
        }, 120_000, 'the condition to show');
        expect(failing).toMatchObject({ type: 'ChangeFailing', step: 'suspend' });
        expect((await tenantctl(['show', tenantId])).stdout).toMatch(/^condition\s+ChangeFailing \(suspend\): .*\d+ attempts; next at /m);
        expect((await tenantctl(['list', '--customer', customer])).stdout).toMatch(new RegExp(`${tenantId}\\s+\\S+\\s+starter\\s+\\S+\\s+\\S+\\s+ChangeFailing \\(suspend\\)`));

        // deprovision now, and watch it go.
        expect((await tenantctl(['deprovision', tenantId, '--grace', '0'])).code).toBe(EXIT.ok);
        const gone = await tenantctl(['--json', 'watch', tenantId, '--until', 'deprovisioned', '--interval', '300']);
        expect(gone.code).toBe(EXIT.ok);
        expect(ndjson(gone).at(-1)).toMatchObject({ type: 'done', tenant: { status: 'deprovisioned' } });
      });
    } finally {
      await withWorker({ taskQueue, workflowsPath, activities: createActivities(realDeps(db)) }, () => deprovisionLeftovers(temporal.client, tenants));
    }
    if (api.child.exitCode !== null) throw new Error(`the API process died: ${api.output()}`);
  }, 420_000);

  it('lists, shows and reprocesses recorded Stripe events', async () => {
    // A paid event for a plan the catalogue does not have: recorded as ignored, nothing provisioned.
    const evt = event({ type: 'payment_intent.succeeded', customer: `cus_cli_${randomBytes(6).toString('hex')}`, plan: 'no-such-plan' });
    const id = String(evt.id);
    expect((await postEvent({ url: api.apiUrl }, evt)).status).toBe(200);

    const listed = json<{ events: { id: string; outcome: string; type: string }[] }>(await tenantctl(['--json', 'events', 'list', '--type', 'payment_intent.succeeded', '--limit', '100']));
    expect(listed.events.find((e) => e.id === id)).toMatchObject({ outcome: 'ignored', type: 'payment_intent.succeeded' });
    const table = await tenantctl(['events', 'list', '--type', 'payment_intent.succeeded', '--limit', '100']);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+TYPE\s+OUTCOME\s+ATTEMPTS\s+TENANTID\s+RECEIVEDAT$/);
    expect(table.stdout).toMatch(new RegExp(`^${id}\\s+payment_intent.succeeded\\s+ignored\\s+1\\s`, 'm'));

    const shown = await tenantctl(['events', 'show', id]);
    expect(shown.code).toBe(EXIT.ok);
    expect(shown.stdout).toMatch(/^outcome\s+ignored$/m);
    expect(shown.stdout).toMatch(/^outbox:\n {2}\(none\)$/m);

    // Reprocessing fetches the event from the Stripe API (stripe-mock here) and decides again.
    const again = await tenantctl(['--json', 'events', 'reprocess', id]);
    expect({ code: again.code, stderr: again.stderr }).toEqual({ code: EXIT.ok, stderr: '' });
    expect(json<{ reprocessed: boolean; outcome: string }>(again)).toMatchObject({ reprocessed: true, outcome: expect.any(String) as unknown });

    expect((await tenantctl(['events', 'show', `evt_cli_missing_${randomBytes(4).toString('hex')}`])).code).toBe(EXIT.notFound);
    expect((await tenantctl(['events', 'reprocess', 'not-an-event'])).code).toBe(EXIT.usage);
  }, 120_000);
});
