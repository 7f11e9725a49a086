/**
 * The fault matrix on the real stack: real worker processes killed with SIGKILL in each
 * provisioning step, a burst of signups while the kube-apiserver (behind Toxiproxy) resets or
 * stalls a fifth of its connections, and PostgreSQL (behind Toxiproxy) down during provisioning,
 * a lifecycle change and a compensation. Each scenario ends by tearing everything down and
 * counting what was completed, lost, duplicated or left over (docs/reliability.md).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { V1Namespace } from '@kubernetes/client-node';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { temporal as proto } from '@temporalio/proto';
import { createActivities } from '../../src/activities';
import { deprovisionSignal, helmTaskQueue, suspendSignal, tenantWorkflowId, type TenantStatus } from '../../src/contract';
import { createDb, type Db } from '../../src/db/client';
import { LABEL_TENANT_ID } from '../../src/k8s/labels';
import { connectTemporalClient, temporalSettingsFromEnv } from '../../src/temporal/connection';
import { connectTemporalWorker } from '../../src/temporal/native';
import { WorkerGroup } from '../../src/worker';
import type { provisionTenant } from '../../src/workflows';
import { recordFaultRow } from './fault-report';
import { ROOT, env, eventually, newTenantId, realDeps, testDb, testKube, uniqueTaskQueue, useTemporalClient, withWorker, workflowBundle } from './helpers';
import { WORKFLOW_BUNDLE, buildDist, buildWorkflowBundle } from './build-dist';
import { ToxiProxy } from './toxiproxy';

const execFileP = promisify(execFile);
const DIST = path.join(ROOT, 'dist');
const workflowsPath = require.resolve('../../src/workflows');
/** The issue asks for 2 minutes; CI runs a shorter outage that still outlasts every bounded retry (about 30 s). */
const PG_OUTAGE_SECONDS = Number(process.env.FAULT_PG_OUTAGE_SECONDS ?? 60);
const STARTED = proto.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

type Handle = WorkflowHandle<typeof provisionTenant>;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** True when dist/ (worker and prebuilt workflow bundle) is newer than every source file. */
function distIsFresh(): boolean {
  const newest = (dirPath: string): number =>
    Math.max(0, ...readdirSync(dirPath, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(path.join(dirPath, e.name)) : statSync(path.join(dirPath, e.name)).mtimeMs)));
  try {
    const built = Math.min(statSync(path.join(DIST, 'worker.js')).mtimeMs, statSync(WORKFLOW_BUNDLE).mtimeMs);
    return built > newest(path.join(ROOT, 'src'));
  } catch {
    return false;
  }
}

/** The JSON log lines in a worker's output (a line still being written is skipped). */
function workerLines(output: string): Array<Record<string, unknown>> {
  return output.split('\n').flatMap((line) => {
    try {
      const parsed = JSON.parse(line) as Record<string, unknown> | null;
      return parsed && typeof parsed === 'object' ? [parsed] : [];
    } catch {
      return [];
    }
  });
}

describe('fault matrix (real stack, Toxiproxy, SIGKILL)', () => {
  const temporal = useTemporalClient();
  const kube = testKube();
  const db = testDb();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'faults-'));
  const proxies: ToxiProxy[] = [];
  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.delete()));
    await db.$disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  const proxy = async (prefix: string, upstream: string) => {
    const p = await ToxiProxy.create(prefix, upstream);
    proxies.push(p);
    return p;
  };
  const dbVia = (p: ToxiProxy) => {
    const url = new URL(env('DATABASE_URL'));
    url.host = p.listen;
    return url.toString();
  };
  /** A copy of the cluster's kubeconfig whose server is the proxy (the certificate is for 127.0.0.1). */
  const kubeconfigVia = (p: ToxiProxy) => {
    const file = path.join(dir, `kubeconfig-${p.name}`);
    writeFileSync(file, readFileSync(env('KUBECONFIG'), 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://${p.listen}`), { mode: 0o600 });
    return file;
  };
  const kubeUpstream = () => /server: https:\/\/([^\s]+)/.exec(readFileSync(env('KUBECONFIG'), 'utf8'))![1]!;

  const start = (taskQueue: string, tenantId: string, extra: Record<string, unknown> = {}): Promise<Handle> =>
    temporal.client.workflow.start<typeof provisionTenant>('provisionTenant', {
      taskQueue,
      workflowId: tenantWorkflowId(tenantId),
      args: [{ tenantId, plan: 'starter', lifecycleBackoff: { initialSeconds: 2, maxSeconds: 10 }, ...extra }],
    });
  const statusOf = async (id: string): Promise<TenantStatus | undefined> => (await db.tenant.findUnique({ where: { id } }))?.status as TenantStatus | undefined;
  const waitAll = (ids: string[], status: TenantStatus, ms: number) =>
    eventually(async () => (await Promise.all(ids.map(statusOf))).every((s) => s === status), ms, `${ids.length} tenants ${status}`).catch(() => undefined);

  /** Tenants with more than one workflow execution or more than one namespace labelled as theirs. */
  async function duplicated(ids: string[], client: Client = temporal.client): Promise<number> {
    let n = 0;
    for (const id of ids) {
      let runs = 0;
      for await (const _ of client.workflow.list({ query: `WorkflowId = '${tenantWorkflowId(id)}'` })) runs++;
      const namespaces = await kube.list<V1Namespace>('v1', 'Namespace', undefined, `${LABEL_TENANT_ID}=${id}`);
      if (runs > 1 || namespaces.length > 1) n++;
    }
    return n;
  }

  /** Deprovisions every tenant, then counts those with a namespace or a live row left behind. */
  async function teardown(handles: Handle[], ids: string[]): Promise<number> {
    await Promise.all(handles.map((h) => h.signal(deprovisionSignal, { reason: 'fault matrix cleanup' }).catch(() => undefined)));
    await Promise.all(handles.map((h) => h.result().catch(() => undefined)));
    await eventually(async () => {
      const left = await Promise.all(ids.map((id) => kube.list<V1Namespace>('v1', 'Namespace', undefined, `${LABEL_TENANT_ID}=${id}`)));
      return left.every((l) => l.length === 0);
    }, 180_000, 'namespaces gone').catch(() => undefined);
    let left = 0;
    for (const id of ids) {
      const namespaces = await kube.list<V1Namespace>('v1', 'Namespace', undefined, `${LABEL_TENANT_ID}=${id}`);
      const status = await statusOf(id);
      if (namespaces.length > 0 || (status !== undefined && status !== 'deprovisioned' && status !== 'failed')) left++;
    }
    return left;
  }

  const ensureDist = async () => {
    if (distIsFresh()) return;
    await buildDist();
    await buildWorkflowBundle();
  };

  /** A real worker process (dist/worker.js) behind the proxies, with its output collected as it comes. */
  const spawnWorker = async (taskQueue: string, pg: ToxiProxy, kubeProxy: ToxiProxy, extraEnv: Record<string, string> = {}) => {
    let out = '';
    const child = spawn(process.execPath, [path.join(DIST, 'worker.js')], {
      env: {
        PATH: process.env.PATH,
        // helm and its discovery cache write under HOME; without one they write into the checkout.
        HOME: dir,
        DATABASE_URL: dbVia(pg),
        TEMPORAL_ADDRESS: env('TEMPORAL_ADDRESS'),
        KUBECONFIG: kubeconfigVia(kubeProxy),
        TASK_QUEUE: taskQueue,
        WORKFLOW_BUNDLE,
        HELM_TIMEOUT_SECONDS: '120',
        // Debug: the SDK's "Activity started" lines say which step is in flight.
        LOG_LEVEL: 'debug',
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    // What the worker wrote by then, read when the wait fails (not when it starts).
    await eventually(() => Promise.resolve(out.includes('worker polling')), 60_000, 'the worker to poll').catch((err: Error) => {
      throw new Error(`${err.message}; exit code ${child.exitCode ?? 'none (still running)'}; its output: ${out.slice(-1500) || '(none)'}`);
    });
    return { child, lines: () => workerLines(out) };
  };
  const killed = async (child: ChildProcess) => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  /** True once the worker has started this tenant's activity. */
  const started = (lines: Array<Record<string, unknown>>, activity: string, tenantId: string) =>
    lines.some((l) => l.msg === 'Activity started' && l.activityType === activity && l.tenantId === tenantId);

  it('kill -9 of a real worker process during each of the 8 provisioning steps', async () => {
    const began = Date.now();
    await ensureDist();
    // Latency makes every step last long enough to be caught in flight: the shortest, recordTenant,
    // is a single statement.
    const pg = await proxy('kill9-pg', new URL(env('DATABASE_URL')).host);
    await pg.addToxic('slow', { type: 'latency', attributes: { latency: 500 } });
    const kubeProxy = await proxy('kill9-kube', kubeUpstream());
    await kubeProxy.addToxic('slow', { type: 'latency', attributes: { latency: 250 } });
    const taskQueue = uniqueTaskQueue('kill9');
    let worker: Awaited<ReturnType<typeof spawnWorker>> | undefined;
    const steps: Array<[string, string]> = [
      ['recordTenant', 'recordTenant'],
      ['assignNamespace', 'assignNamespace'],
      ['ensureNamespace', 'ensureNamespace'],
      ['applyNetworkPolicies', 'applyNetworkPolicies'],
      ['applyResourceLimits', 'applyResourceLimits'],
      ['ensureSecrets', 'ensureSecrets'],
      ['deployApp', 'deployApp'],
      ['markActive', 'setTenantStatus'],
    ];
    const ids: string[] = [];
    const handles: Handle[] = [];
    const killedIn: string[] = [];
    try {
      worker = await spawnWorker(taskQueue, pg, kubeProxy);
      for (const [step, activity] of steps) {
        const id = newTenantId();
        ids.push(id);
        const h = await start(taskQueue, id);
        handles.push(h);
        // Quick steps run as local activities, which the server does not list as pending: the
        // worker's "Activity started" line (debug) says when this tenant's step is in flight.
        const caught = await eventually(async () => {
          if (activity === 'deployApp') {
            const d = await h.describe();
            return (d.raw.pendingActivities ?? []).some((a) => a.activityType?.name === activity && a.state === STARTED && (a.attempt ?? 1) === 1);
          }
          return Promise.resolve(started(worker!.lines(), activity, id));
        }, 60_000, `${step} in flight`).catch(() => false);
        await killed(worker.child);
        if (caught) killedIn.push(step);
        worker = await spawnWorker(taskQueue, pg, kubeProxy);
      }
      // A step in flight runs again once its timeout passes: the workflow task's 10 s for a local
      // activity, 30 s of missed heartbeats for Helm.
      await waitAll(ids, 'active', 240_000);
      const statuses = await Promise.all(ids.map(statusOf));
      const completed = statuses.filter((s) => s === 'active').length;
      const dup = await duplicated(ids);
      const leftOver = await teardown(handles, ids);
      recordFaultRow({
        fault: 'kill -9 of the worker process during each of the 8 provisioning steps',
        tenants: ids.length,
        completed,
        lost: ids.length - completed,
        duplicated: dup,
        leftOver,
        seconds: Math.round((Date.now() - began) / 1000),
        note: `killed while in flight: ${killedIn.join(', ')}`,
      });
      expect(killedIn).toEqual(steps.map(([s]) => s));
      expect(statuses).toEqual(ids.map(() => 'active'));
      expect(dup).toBe(0);
      expect(leftOver).toBe(0);
    } finally {
      if (worker && worker.child.exitCode === null) worker.child.kill('SIGKILL');
    }
  }, 900_000);

  it('kill -9 after the namespace was created, then a failing install: the run still undoes the namespace it created', async () => {
    const began = Date.now();
    await ensureDist();
    const pg = await proxy('kill9-undo-pg', new URL(env('DATABASE_URL')).host);
    await pg.addToxic('slow', { type: 'latency', attributes: { latency: 500 } });
    const kubeProxy = await proxy('kill9-undo-kube', kubeUpstream());
    const taskQueue = uniqueTaskQueue('kill9-undo');
    // A chart the API server rejects: the install fails for good and the saga undoes the run.
    const broken = { TENANT_CHART: path.join(ROOT, 'test/fixtures/charts/broken') };
    const id = newTenantId();
    let worker = await spawnWorker(taskQueue, pg, kubeProxy, broken);
    try {
      const h = await start(taskQueue, id);
      // ensureSecrets runs once the namespace exists; the worker dies before the run has recorded
      // anything since it looked at what existed before it.
      await eventually(() => Promise.resolve(started(worker.lines(), 'ensureSecrets', id)), 60_000, 'ensureSecrets in flight');
      const before = await kube.list<V1Namespace>('v1', 'Namespace', undefined, `${LABEL_TENANT_ID}=${id}`);
      await killed(worker.child);
      worker = await spawnWorker(taskQueue, pg, kubeProxy, broken);
      await waitAll([id], 'failed', 240_000);
      const left = await eventually(async () => {
        const ns = await kube.list<V1Namespace>('v1', 'Namespace', undefined, `${LABEL_TENANT_ID}=${id}`);
        return ns.length === 0 ? ns : undefined;
      }, 120_000, 'the namespace the run created to be deleted').catch(() => ['left']);
      await h.result().catch(() => undefined);
      recordFaultRow({
        fault: 'kill -9 of the worker after it created the namespace, then a final install failure',
        tenants: 1,
        completed: (await statusOf(id)) === 'failed' && left.length === 0 ? 1 : 0,
        lost: 0,
        duplicated: await duplicated([id]),
        leftOver: left.length,
        seconds: Math.round((Date.now() - began) / 1000),
        note: 'the new worker redid the run\'s first workflow task; the namespace was still undone as the run\'s own',
      });
      expect(before).toHaveLength(1);
      expect(await statusOf(id)).toBe('failed');
      expect(left).toEqual([]);
    } finally {
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
    }
  }, 600_000);

  it('a burst of 20 signups while the kube-apiserver resets or stalls 20% of connections', async () => {
    const began = Date.now();
    const kubeProxy = await proxy('flaky-kube', kubeUpstream());
    await kubeProxy.addToxic('reset', { type: 'reset_peer', toxicity: 0.1, attributes: { timeout: 200 } });
    await kubeProxy.addToxic('stall', { type: 'timeout', toxicity: 0.1, attributes: { timeout: 2_000 } });
    const taskQueue = uniqueTaskQueue('flaky-kube');
    const ids = Array.from({ length: 20 }, () => newTenantId());
    const deps = createActivities(realDeps(db, { kubeconfig: kubeconfigVia(kubeProxy) }));
    await withWorker({ taskQueue, workflowsPath, activities: deps }, async () => {
      const handles = await Promise.all(ids.map((id) => start(taskQueue, id)));
      await waitAll(ids, 'active', 300_000);
      const statuses = await Promise.all(ids.map(statusOf));
      const completed = statuses.filter((s) => s === 'active').length;
      const dup = await duplicated(ids);
      await kubeProxy.removeToxic('reset');
      await kubeProxy.removeToxic('stall');
      const leftOver = await teardown(handles, ids);
      recordFaultRow({
        fault: 'kube-apiserver behind Toxiproxy resets 10% and stalls 10% of connections, burst of 20',
        tenants: ids.length,
        completed,
        lost: ids.length - completed,
        duplicated: dup,
        leftOver,
        seconds: Math.round((Date.now() - began) / 1000),
        note: 'bounded activity retries (6 attempts; Helm 3)',
      });
      expect(statuses).toEqual(ids.map(() => 'active'));
      expect(dup).toBe(0);
      expect(leftOver).toBe(0);
    });
  }, 900_000);

  it('the Temporal server killed (SIGKILL) and restarted on its database during a burst of 20', async () => {
    const began = Date.now();
    const [port, uiPort] = [await freePort(), await freePort()];
    const address = `127.0.0.1:${port}`;
    const dbFile = path.join(dir, 'temporal-restart.db');
    const searchAttributes = ['TenantId', 'TenantStatus', 'TenantPlan', 'CustomerId', 'TenantCondition'].flatMap((a) => ['--search-attribute', `${a}=Keyword`]);
    const startServer = async (): Promise<ChildProcess> => {
      const server = spawn('temporal', ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(uiPort), '--headless', '--db-filename', dbFile, '--log-level', 'error', ...searchAttributes], { stdio: 'ignore' });
      await eventually(async () => {
        const { stdout } = await execFileP('temporal', ['operator', 'cluster', 'health', '--address', address, '--command-timeout', '2s']).catch(() => ({ stdout: '' }));
        return stdout.includes('SERVING');
      }, 60_000, 'the private Temporal server');
      return server;
    };
    let server = await startServer();
    // The private server speaks plaintext whatever the stack's settings say.
    const settings = { ...temporalSettingsFromEnv({}), TEMPORAL_ADDRESS: address };
    const workerConnection = await connectTemporalWorker(settings);
    const { client, connection: clientConnection } = await connectTemporalClient(settings, 10_000);
    const taskQueue = uniqueTaskQueue('temporal-restart');
    const activities = createActivities(realDeps(db));
    const worker = new WorkerGroup(
      await Worker.create({ connection: workerConnection, taskQueue, workflowBundle: await workflowBundle(workflowsPath), activities }),
      await Worker.create({ connection: workerConnection, taskQueue: helmTaskQueue(taskQueue), activities }),
    );
    const running = worker.run();
    const ids = Array.from({ length: 20 }, () => newTenantId());
    try {
      const handles = await Promise.all(
        ids.map((tenantId) =>
          client.workflow.start<typeof provisionTenant>('provisionTenant', { taskQueue, workflowId: tenantWorkflowId(tenantId), args: [{ tenantId, plan: 'starter' }] }),
        ),
      );
      await new Promise((r) => setTimeout(r, 3_000));
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGKILL');
      await exited;
      await new Promise((r) => setTimeout(r, 3_000));
      server = await startServer();
      await waitAll(ids, 'active', 300_000);
      const statuses = await Promise.all(ids.map(statusOf));
      const completed = statuses.filter((st) => st === 'active').length;
      const dup = await duplicated(ids, client);
      const leftOver = await teardown(handles, ids);
      recordFaultRow({
        fault: 'Temporal server killed (SIGKILL) and restarted during a burst of 20',
        tenants: ids.length,
        completed,
        lost: ids.length - completed,
        duplicated: dup,
        leftOver,
        seconds: Math.round((Date.now() - began) / 1000),
        note: 'a private dev server on its own SQLite file, down about 5 s',
      });
      expect(statuses).toEqual(ids.map(() => 'active'));
      expect(dup).toBe(0);
      expect(leftOver).toBe(0);
    } finally {
      worker.shutdown();
      await running.catch(() => undefined);
      await workerConnection.close();
      await clientConnection.close();
      server.kill('SIGTERM');
    }
  }, 900_000);

  it(`PostgreSQL down for ${PG_OUTAGE_SECONDS} s during provisioning, a lifecycle change and a compensation`, async () => {
    const began = Date.now();
    const pg = await proxy('pg-down', new URL(env('DATABASE_URL')).host);
    const workerDb: Db = createDb(dbVia(pg), { maxConnections: 5 });
    const taskQueue = uniqueTaskQueue('pg-down');
    const brokenQueue = uniqueTaskQueue('pg-down-broken');
    const good = createActivities({ ...realDeps(db), db: workerDb });
    const broken = createActivities({ ...realDeps(db, { chart: path.join(ROOT, 'test/fixtures/charts/broken') }), db: workerDb });
    const [provisioning, lifecycle, compensating] = [newTenantId(), newTenantId(), newTenantId()];
    try {
      await withWorker({ taskQueue: brokenQueue, workflowsPath, activities: broken }, () =>
        withWorker({ taskQueue, workflowsPath, activities: good }, async () => {
          const live = await start(taskQueue, lifecycle);
          await waitAll([lifecycle], 'active', 120_000);
          // The compensation is in flight when PostgreSQL goes away.
          const failing = await start(brokenQueue, compensating);
          await eventually(async () => {
            const d = await failing.describe();
            return (d.raw.pendingActivities ?? []).some((a) => ['uninstallApp', 'removeSecrets', 'removeResourceLimits', 'removeNetworkPolicies', 'deleteNamespace'].includes(a.activityType?.name ?? ''));
          }, 120_000, 'a compensation in flight');
          await pg.setEnabled(false);
          const fresh = await start(taskQueue, provisioning);
          await live.signal(suspendSignal, { reason: 'payment failed' });
          await new Promise((r) => setTimeout(r, PG_OUTAGE_SECONDS * 1000));
          await pg.setEnabled(true);

          await waitAll([provisioning], 'active', 240_000);
          await waitAll([lifecycle], 'suspended', 240_000);
          await waitAll([compensating], 'failed', 240_000);
          const results = {
            provisioning: await statusOf(provisioning),
            lifecycle: await statusOf(lifecycle),
            compensating: await statusOf(compensating),
          };
          // The compensated tenant's run failed because of its chart, never because of the outage.
          const failure = await failing.result().then(() => 'completed', (e: Error & { cause?: Error }) => `${e.cause?.message ?? e.message}`);
          const compensatedCleanly = results.compensating === 'failed' && !/database/i.test(failure) &&
            (await kube.list<V1Namespace>('v1', 'Namespace', undefined, `${LABEL_TENANT_ID}=${compensating}`)).length === 0;
          const runsAlive = [(await live.describe()).status.name, (await fresh.describe()).status.name];
          const completed = [results.provisioning === 'active', results.lifecycle === 'suspended', compensatedCleanly].filter(Boolean).length;
          const ids = [provisioning, lifecycle, compensating];
          const dup = await duplicated(ids);
          const leftOver = await teardown([live, fresh], ids);
          recordFaultRow({
            fault: `PostgreSQL down ${PG_OUTAGE_SECONDS} s (Toxiproxy) during provisioning, a lifecycle change (suspend) and a compensation`,
            tenants: 3,
            completed,
            lost: 3 - completed,
            duplicated: dup,
            leftOver,
            seconds: Math.round((Date.now() - began) / 1000),
            note: `no run failed because of the outage; outage shortened from the 2 minutes asked, FAULT_PG_OUTAGE_SECONDS=120 runs it in full`,
          });
          expect(results).toEqual({ provisioning: 'active', lifecycle: 'suspended', compensating: 'failed' });
          expect(failure).toMatch(/deployApp failed/);
          expect(compensatedCleanly).toBe(true);
          expect(runsAlive).toEqual(['RUNNING', 'RUNNING']);
          expect(dup).toBe(0);
          expect(leftOver).toBe(0);
        }),
      );
    } finally {
      await pg.setEnabled(true).catch(() => undefined);
      await workerDb.$disconnect();
    }
  }, 900_000);
});
