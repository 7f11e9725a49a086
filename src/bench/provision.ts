/**
 * Provisioning benchmark: how long signups take on this cluster, end to end, through the workflow
 * and, side by side in the same run, through the direct baseline (src/bench/direct.ts: the same
 * Kubernetes writes and Helm install, no Temporal, no PostgreSQL).
 *
 *   npm run bench -- --tenants 20 --concurrency 20 [--workers 2] [--single 3]
 *
 * Phases, back to back: one tenant at a time through each path (`--single` repeats, time from
 * workflow start, or from the first write, to `active`); then a burst of N tenants through the
 * workflow, torn down; then the same burst through the direct path at the same concurrency, torn
 * down. It prints time to all active, throughput, p50/p95 time to active, teardown time and the
 * workflow/direct ratio; Kubernetes API requests per tenant beside the objects a tenant gets; the
 * peak memory of each worker. Requests per tenant are counted three ways: by the adapter itself, by
 * the API server's /metrics (all clients together), and from the API server's audit log
 * (`KUBE_AUDIT_LOG`, written by the local stack; src/bench/audit.ts), which splits the requests in
 * the burst's tenant namespaces, from its start to all active, by client (the provisioner's adapter
 * and readiness watches, helm, the rest: controllers, scheduler, kwok) and by verb. Then checks
 * that nothing was done twice (one workflow run per tenant, release revision 1, one `succeeded`
 * step-log row per step) and nothing is left over (namespaces, release records, tenant rows not
 * `deprovisioned`), and exits non-zero if anything failed, was duplicated or leaked. Figures are
 * never asserted: compare runs on one machine.
 *
 * `--workers 0` (default) runs the worker in this process; `--workers N` spawns N real worker
 * processes (`node dist/worker.js`) polling the benchmark's task queue, each with its peak RSS and
 * V8 heap reported, started as the image and chart start them (MALLOC_ARENA_MAX=2 unless set, V8
 * old space capped at `--worker-heap-mb`, default 128 as the chart's worker.heapMb, semi-space at
 * `--worker-semi-space-mb`, default 4 as the chart's worker.semiSpaceMb; 0 for Node.js's
 * default). Worker settings come from the environment as for a real worker (K8S_QPS, K8S_BURST, …;
 * source .stack/env for the stack). `--skip-direct` runs the workflow path alone, for memory and
 * CPU runs that need no ratio; `--worker-cpu-prof DIR` writes each worker's V8 CPU profiles there
 * (open them in Chrome DevTools). Each burst also prints the CPU time every process of the stack
 * spent from its start to all active (src/bench/cpu.ts): where the two paths' costs differ.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import type { WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { ActivityDeps } from '../activities';
import { loadWorkerConfig, type WorkerConfig } from '../config';
import { PROVISION_STEPS, deprovisionSignal, statusQuery, tenantWorkflowId } from '../contract';
import { createDb, type Db } from '../db/client';
import { dropDatabase, ensureDatabase, migrate } from '../db/migrate';
import type { Helm } from '../helm/helm';
import { createKube, loadKubeConfig } from '../k8s/client';
import { loadPlanCatalogue } from '../plans';
import { TENANT_RELEASE_NAME, tenantNamespace } from '../naming';
import { connectTemporalClient } from '../temporal/connection';
import { writeWorkflowBundle } from '../workflow-bundle';
import { activityDepsFromConfig, createWorker } from '../worker';
import type { provisionTenant } from '../workflows';
import { AUDIT_CLIENTS, countAuditRequests, type AuditCounts, type AuditWindow } from './audit';
import { apiRequestDelta, leftovers, podRoom, releaseRevisions, scrapeApiRequests } from './cluster';
import { cpuDelta, formatCpu, sampleCpu, stackClassifier, type Classify } from './cpu';
import { deprovisionDirect, inPool, provisionDirect, provisionerObjectCount } from './direct';
import { startWorkerProcesses, type WorkerProcess } from './workers';
import { percentile } from './stats';

/** Worker settings that put tenant pods on the local stack's real node. */
const REAL_NODE_SETTINGS = ['TENANT_POD_PLACEMENT', 'TENANT_IMAGE', 'TENANT_UDP_PORT', 'ISOLATION_CHECK'] as const;

const execFileP = promisify(execFile);

/** Steps that run once per tenant in a provisioning and teardown: a second `succeeded` row is work done twice. */
const ONCE_PER_TENANT = [...PROVISION_STEPS, 'uninstallApp', 'deleteNamespace'];

/** How many workflow starts, signals or reads the benchmark has in flight at once. */
const CLIENT_FANOUT = 50;

interface Burst {
  /** From the burst's start to each tenant's `active`. */
  activeMs: number[];
  allActiveMs: number;
  teardownMs: number;
  failed: Array<{ tenantId: string; error: string }>;
  /** Kubernetes requests sent by the provisioner's adapter, helm runs, API server requests (all clients) while provisioning. */
  kubeRequests: number;
  helmRuns: number;
  apiServer?: { total: number; writes: number };
  /** The burst's tenant namespaces, from its start to all active: what the audit log is read for. */
  audit: AuditWindow;
  /** CPU seconds by process class from the burst's start to all active. */
  cpu: Map<string, number>;
}

interface WorkflowBurst extends Burst {
  /** Release revisions per namespace, read while the tenants were live. */
  revisions: Map<string, number[]>;
  objectsPerTenant?: number;
}

interface Counter {
  kube: number;
  helm: number;
}

/** The direct path's figures when --skip-direct left it out: every one prints as –. */
const notRun = (): Burst => ({ activeMs: [], allActiveMs: NaN, teardownMs: NaN, failed: [], kubeRequests: NaN, helmRuns: NaN, audit: { from: 0, to: 0, namespaces: new Set() }, cpu: new Map() });

const sec = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : '–');
const perMin = (n: number, ms: number) => (ms > 0 && n > 0 ? (n / (ms / 60_000)).toFixed(1) : '–');
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Counts each helm run the activities (or the direct path) ask for. */
function countingHelm(helm: Helm, counter: Counter): Helm {
  const counted = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) => (...args: A) => {
    counter.helm += 1;
    return fn(...args);
  };
  return {
    upgradeInstall: counted(helm.upgradeInstall.bind(helm)),
    uninstall: counted(helm.uninstall.bind(helm)),
    status: counted(helm.status.bind(helm)),
    values: counted(helm.values.bind(helm)),
    recoverPending: counted(helm.recoverPending.bind(helm)),
  };
}

/**
 * Polls the tenant rows (one query for all of them) until each has reached `done`, or `failed`,
 * or the deadline passes. Returns when each reached it, in ms after `since`, and the failures.
 */
async function awaitStatus(
  db: Db,
  ids: readonly string[],
  done: string,
  since: number,
  deadline: number,
  pollMs: number,
): Promise<{ at: Map<string, number>; failed: Array<{ tenantId: string; error: string }> }> {
  const at = new Map<string, number>();
  const failed: Array<{ tenantId: string; error: string }> = [];
  let pending = [...ids];
  while (pending.length > 0) {
    const rows = await db.tenant.findMany({ where: { id: { in: pending } }, select: { id: true, status: true, lastError: true } });
    const now = Date.now();
    for (const row of rows) {
      if (row.status === done) at.set(row.id, now - since);
      else if (row.status === 'failed') failed.push({ tenantId: row.id, error: row.lastError ?? 'failed' });
    }
    pending = pending.filter((id) => !at.has(id) && !failed.some((f) => f.tenantId === id));
    if (pending.length === 0) break;
    if (Date.now() > deadline) {
      for (const id of pending) failed.push({ tenantId: id, error: `not ${done} when the phase timed out` });
      break;
    }
    await sleep(pollMs);
  }
  return { at, failed };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tenants: { type: 'string', default: '10' },
      plan: { type: 'string', default: 'starter' },
      concurrency: { type: 'string', default: '20' },
      workers: { type: 'string', default: '0' },
      single: { type: 'string', default: '3' },
      'phase-timeout-seconds': { type: 'string', default: '900' },
      'poll-ms': { type: 'string', default: '500' },
      'worker-heap-mb': { type: 'string' },
      'worker-semi-space-mb': { type: 'string' },
      'skip-direct': { type: 'boolean', default: false },
      'worker-cpu-prof': { type: 'string' },
    },
  });
  const n = Number(values.tenants);
  const concurrency = Number(values.concurrency);
  const workerCount = Number(values.workers);
  const singles = Number(values.single);
  const phaseTimeoutMs = Number(values['phase-timeout-seconds']) * 1000;
  const pollMs = Number(values['poll-ms']);
  const skipDirect = values['skip-direct'];
  const cpuProfileDir = values['worker-cpu-prof'] ? path.resolve(values['worker-cpu-prof']) : undefined;
  if (cpuProfileDir && workerCount === 0) throw new Error('--worker-cpu-prof needs --workers 1 or more');
  // Spawned workers run as the chart runs them: V8 heaps capped at worker.heapMb's default.
  const heapMb = Number(values['worker-heap-mb'] ?? (workerCount > 0 ? '128' : '0'));
  const semiSpaceMb = Number(values['worker-semi-space-mb'] ?? (workerCount > 0 ? '4' : '0'));
  if (!Number.isInteger(n) || n < 1 || n > 500) throw new Error('--tenants must be an integer from 1 to 500');
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 500) throw new Error('--concurrency must be an integer from 1 to 500');
  if (![0, 1, 2, 4, 8].includes(workerCount)) throw new Error('--workers must be 0 (in-process), 1, 2, 4 or 8');
  if (!Number.isInteger(singles) || singles < 0 || singles > 20) throw new Error('--single must be an integer from 0 to 20');
  if (!(phaseTimeoutMs > 0) || !(pollMs >= 50)) throw new Error('--phase-timeout-seconds must be positive and --poll-ms at least 50');
  if (!Number.isInteger(heapMb) || heapMb < 0 || (heapMb > 0 && (heapMb < 64 || workerCount === 0))) throw new Error('--worker-heap-mb must be 0 (Node.js default) or at least 64 (default 128), with --workers 1 or more');
  if (!Number.isInteger(semiSpaceMb) || semiSpaceMb < 0 || semiSpaceMb > 64 || (semiSpaceMb > 0 && workerCount === 0)) throw new Error('--worker-semi-space-mb must be 0 (Node.js default) to 64 (default 4), with --workers 1 or more');

  Runtime.install({ logger: new DefaultLogger('WARN') });
  // The bench measures provisioning at scale on kwok's simulated nodes: the local stack's real
  // node (its placement, image and isolation check, exported by .stack/env) is for tests whose pods
  // must really run, and a burst would not fit on it. Spawned workers inherit this environment.
  for (const name of REAL_NODE_SETTINGS) delete process.env[name];
  const given = loadWorkerConfig();
  // Each path's burst is torn down before the next starts, so the larger of the two must fit.
  const replicas = loadPlanCatalogue(given.PLANS_JSON).get(values.plan).app.replicas;
  const podsNeeded = Math.max(n, singles > 0 ? 1 : 0) * replicas;
  const room = await podRoom(createKube(loadKubeConfig(given.KUBECONFIG), { timeoutMs: 30_000 }));
  if (room.free < podsNeeded) {
    const perNode = room.readyNodes > 0 ? room.capacity / room.readyNodes : 110;
    throw new Error(
      `the cluster has room for ${room.free} more pods on ${room.readyNodes} Ready nodes, and ${n} ${values.plan} tenants need ${podsNeeded}: ` +
        `on the local stack, STACK_KWOK_NODES=${Math.ceil((podsNeeded + room.capacity - room.free) / perNode)} npm run stack:up adds simulated nodes (${perNode} pods each)`,
    );
  }
  // A throw-away database, migrated here: the step-log and tenant-row checks read only this run's
  // rows, and spawned workers inherit it through the environment.
  const dbUrl = new URL(given.DATABASE_URL);
  dbUrl.pathname = `/tenants_bench_${Date.now().toString(36)}`;
  process.env.DATABASE_URL = dbUrl.toString();
  await ensureDatabase(process.env.DATABASE_URL);
  await migrate(process.env.DATABASE_URL);
  const taskQueue = `bench-${randomUUID().slice(0, 8)}`;
  // The same concurrency for every kind of step: quick ones and Helm's (which has its own slots).
  const config: WorkerConfig = { ...loadWorkerConfig(), TASK_QUEUE: taskQueue, WORKER_MAX_ACTIVITIES: concurrency, WORKER_MAX_HELM_ACTIVITIES: concurrency };
  const kc = loadKubeConfig(config.KUBECONFIG);
  const counter: Counter = { kube: 0, helm: 0 };
  const base = activityDepsFromConfig(config);
  // The worker's adapters with the worker's options, counted: requests through the Kube adapter's
  // hook, helm runs at the Helm adapter's interface.
  const deps: ActivityDeps = {
    ...base,
    kube: createKube(kc, { qps: config.K8S_QPS, burst: config.K8S_BURST, timeoutMs: config.K8S_TIMEOUT_MS, onRequest: () => (counter.kube += 1) }),
    helm: countingHelm(base.helm, counter),
  };
  // The benchmark's own reads are neither rate-limited with the worker's nor counted.
  const observer = createKube(kc, { qps: 100, burst: 200, timeoutMs: 30_000 });
  const db = createDb(config.DATABASE_URL, { maxConnections: 4 });
  const { client, connection } = await connectTemporalClient(config, 10_000);
  const prefix = config.NAMESPACE_PREFIX;
  const allIds: string[] = [];
  const newIds = (k: number) => {
    const ids = Array.from({ length: k }, () => randomUUID());
    allIds.push(...ids);
    return ids;
  };

  const auditWindow = (ids: readonly string[], from: number, to: number): AuditWindow => ({ from, to, namespaces: new Set(ids.map((id) => tenantNamespace(id, prefix))) });

  const startWorkflow = (tenantId: string) =>
    client.workflow.start<typeof provisionTenant>('provisionTenant', { taskQueue, workflowId: tenantWorkflowId(tenantId), args: [{ tenantId, plan: values.plan }] });

  const singleIds: string[] = [];
  async function singleWorkflow(): Promise<number> {
    const [tenantId] = newIds(1);
    singleIds.push(tenantId!);
    const started = Date.now();
    const handle = await startWorkflow(tenantId!);
    const deadline = started + Math.min(phaseTimeoutMs, 300_000);
    let activeMs = NaN;
    while (Date.now() < deadline) {
      const p = await handle.query(statusQuery).catch(() => undefined);
      if (p?.status === 'active') {
        activeMs = Date.now() - started;
        break;
      }
      if (p?.status === 'failed') throw new Error(`single tenant ${tenantId} failed: ${p.lastError?.message ?? 'unknown'}`);
      await sleep(50);
    }
    await handle.signal(deprovisionSignal, { reason: 'benchmark' });
    await handle.result();
    if (Number.isNaN(activeMs)) throw new Error(`single tenant ${tenantId} was not active within the phase timeout`);
    return activeMs;
  }

  async function singleDirect(): Promise<number> {
    const [tenantId] = newIds(1);
    const started = Date.now();
    await provisionDirect(deps, tenantId!, values.plan);
    const activeMs = Date.now() - started;
    await deprovisionDirect(deps, tenantId!);
    return activeMs;
  }

  /**
   * The counters a burst is measured by, read at its start; `allActive` reads them again once all
   * its tenants are active and gives what the burst cost, from its start to then.
   */
  async function startPhase() {
    const before = await scrapeApiRequests(kc);
    const counted = { ...counter };
    const cpuBefore = await sampleCpu();
    const started = Date.now();
    return {
      started,
      allActive: async (ids: string[]) => {
        const allActiveMs = Date.now() - started;
        const cpu = cpuDelta(cpuBefore, await sampleCpu(), classify());
        const audit = auditWindow(ids, started, started + allActiveMs);
        const apiServer = apiRequestDelta(before, await scrapeApiRequests(kc));
        return { allActiveMs, cpu, audit, apiServer, kubeRequests: counter.kube - counted.kube, helmRuns: counter.helm - counted.helm };
      },
    };
  }

  async function workflowBurst(ids: string[]): Promise<WorkflowBurst> {
    const phase = await startPhase();
    const { started } = phase;
    const deadline = started + phaseTimeoutMs;
    const handles = new Map<string, WorkflowHandle>();
    await inPool(ids, CLIENT_FANOUT, async (id) => void handles.set(id, await startWorkflow(id)));
    const { at, failed } = await awaitStatus(db, ids, 'active', started, deadline, pollMs);
    const { allActiveMs, cpu, audit, apiServer, kubeRequests, helmRuns } = await phase.allActive(ids);
    const live = ids.filter((id) => at.has(id));
    const revisions = await releaseRevisions(observer, new Set(ids.map((id) => tenantNamespace(id, prefix))));
    const objects = live[0] ? await objectsPerTenant(live[0]) : undefined;

    const teardownStart = Date.now();
    await inPool(live, CLIENT_FANOUT, (id) => handles.get(id)!.signal(deprovisionSignal, { reason: 'benchmark' }));
    const gone = await awaitStatus(db, live, 'deprovisioned', teardownStart, teardownStart + phaseTimeoutMs, pollMs);
    failed.push(...gone.failed);
    // The row says deprovisioned a moment before the run closes.
    await inPool(live, CLIENT_FANOUT, (id) => handles.get(id)!.result().then(
      () => undefined,
      (e: Error) => void failed.push({ tenantId: id, error: `workflow failed: ${e.message}` }),
    ));
    return { activeMs: [...at.values()], allActiveMs, teardownMs: Date.now() - teardownStart, failed, kubeRequests, helmRuns, apiServer, audit, revisions, objectsPerTenant: objects, cpu };
  }

  async function directBurst(ids: string[]): Promise<Burst> {
    const phase = await startPhase();
    const { started } = phase;
    const abort = AbortSignal.timeout(phaseTimeoutMs);
    const activeMs: number[] = [];
    const failed: Burst['failed'] = [];
    const live: string[] = [];
    await inPool(ids, concurrency, async (id) => {
      if (abort.aborted) return void failed.push({ tenantId: id, error: 'not started when the phase timed out' });
      try {
        await provisionDirect(deps, id, values.plan);
        activeMs.push(Date.now() - started);
        live.push(id);
      } catch (err) {
        failed.push({ tenantId: id, error: (err as Error).message });
      }
    });
    const { allActiveMs, cpu, audit, apiServer, kubeRequests, helmRuns } = await phase.allActive(ids);
    const teardownStart = Date.now();
    const teardownAbort = AbortSignal.timeout(phaseTimeoutMs);
    // Failed ones too: whatever part of them exists must go.
    await inPool(ids, concurrency, async (id) => {
      await deprovisionDirect(deps, id, teardownAbort).catch((err: Error) => void failed.push({ tenantId: id, error: `teardown: ${err.message}` }));
    });
    return { activeMs, allActiveMs, teardownMs: Date.now() - teardownStart, failed, kubeRequests, helmRuns, apiServer, audit, cpu };
  }

  /** What the workflow path did twice: workflow runs, release revisions, step-log rows. */
  async function duplicates(ids: string[], revisions: Map<string, number[]>): Promise<string[]> {
    const found: string[] = [];
    for (const id of ids) {
      const r = revisions.get(tenantNamespace(id, prefix));
      if (!r || r.length !== 1 || r[0] !== 1) found.push(`${id}: release revisions ${JSON.stringify(r ?? [])} (expected [1])`);
    }
    const runs = new Map<string, number>();
    for await (const wf of client.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) runs.set(wf.workflowId, (runs.get(wf.workflowId) ?? 0) + 1);
    for (const id of ids) {
      const count = runs.get(tenantWorkflowId(id)) ?? 0;
      if (count !== 1) found.push(`${id}: ${count} workflow runs (expected 1)`);
    }
    const rows = await db.tenantStep.groupBy({ by: ['tenantId', 'step'], where: { tenantId: { in: ids }, phase: 'succeeded', step: { in: ONCE_PER_TENANT } }, _count: { _all: true } });
    for (const row of rows) if (row._count._all > 1) found.push(`${row.tenantId}: step ${row.step} succeeded ${row._count._all} times`);
    return found;
  }

  /** Each step's p50 duration (step log: started to succeeded) over these tenants, where it was logged. */
  async function stepDurations(ids: string[]): Promise<string> {
    const rows = await db.tenantStep.findMany({
      where: { tenantId: { in: ids }, step: { in: ['inspectTenant', ...PROVISION_STEPS] }, phase: { in: ['started', 'succeeded'] } },
      select: { tenantId: true, step: true, phase: true, createdAt: true },
      orderBy: { createdAt: 'asc' },
    });
    const startedAt = new Map<string, number>();
    const byStep = new Map<string, number[]>();
    for (const r of rows) {
      const key = `${r.tenantId}/${r.step}`;
      const begun = startedAt.get(key);
      if (r.phase === 'started') startedAt.set(key, r.createdAt.getTime());
      else if (begun !== undefined) byStep.set(r.step, [...(byStep.get(r.step) ?? []), r.createdAt.getTime() - begun]);
    }
    const parts = [...byStep].map(([step, d]) => [step, percentile(d, 50)] as const);
    const inSteps = parts.reduce((sum, [, ms]) => sum + ms, 0);
    return `${parts.map(([step, ms]) => `${step} ${sec(ms)}`).join(', ')} (sum ${sec(inSteps)})`;
  }

  /** Objects one tenant gets: the provisioner's own, the chart's (from a live release's manifest), and Helm's release record. */
  async function objectsPerTenant(tenantId: string): Promise<number> {
    const ns = tenantNamespace(tenantId, prefix);
    const args = [...(config.KUBECONFIG ? ['--kubeconfig', config.KUBECONFIG] : []), 'get', 'manifest', TENANT_RELEASE_NAME, '--namespace', ns];
    const { stdout } = await execFileP(config.HELM_BIN, args, { env: { ...process.env, HELM_DRIVER: 'configmap' } });
    return provisionerObjectCount(deps, tenantId, values.plan) + (stdout.match(/^kind: /gm) ?? []).length + 1;
  }

  // --- workers -------------------------------------------------------------------------------
  let processes: WorkerProcess[] = [];
  let bundleDir: string | undefined;
  let peakInProcess = 0;
  const sampler = setInterval(() => (peakInProcess = Math.max(peakInProcess, process.memoryUsage().rss)), 250);
  let stopInProcess: (() => void) | undefined;
  let inProcessDone: Promise<void> | undefined;
  let workerConnectionClose: (() => Promise<void>) | undefined;
  if (workerCount === 0) {
    const { worker, connection: wc } = await createWorker(config, deps);
    workerConnectionClose = () => wc.close();
    inProcessDone = worker.runUntil(new Promise<void>((resolve) => (stopInProcess = resolve)));
  } else {
    bundleDir = await mkdtemp(path.join(os.tmpdir(), 'bench-bundle-'));
    const workflowBundle = path.join(bundleDir, 'workflow-bundle.js');
    await writeWorkflowBundle(workflowBundle);
    processes = await startWorkerProcesses({ count: workerCount, taskQueue, maxActivities: concurrency, workflowBundle, heapMb: heapMb || undefined, semiSpaceMb: semiSpaceMb || undefined, cpuProfileDir });
  }

  const classify = (): Classify => stackClassifier({ bench: process.pid, workers: processes.map((p) => p.pid) });

  let exitCode = 0;
  try {
    const single = { workflow: [] as number[], direct: [] as number[] };
    for (let i = 0; i < singles; i += 1) {
      single.workflow.push(await singleWorkflow());
      if (!skipDirect) single.direct.push(await singleDirect());
    }

    const wfIds = newIds(n);
    const wf = await workflowBurst(wfIds);
    // --skip-direct: the workflow path alone (memory and CPU runs); the direct column prints –.
    const direct: Burst = skipDirect ? notRun() : await directBurst(newIds(n));

    // Duplicates and leftovers.
    const dups = await duplicates(wfIds, wf.revisions);
    const left = await leftovers(observer, allIds, prefix);
    const rows = await db.tenant.findMany({ where: { id: { in: allIds } }, select: { id: true, status: true } });
    const notDeprovisioned = rows.filter((r) => r.status !== 'deprovisioned');

    const objects = wf.objectsPerTenant;
    // Read once both bursts are over, when the API server has written their last events.
    const auditLog = process.env.KUBE_AUDIT_LOG;
    const [wfAudit, directAudit] = auditLog && existsSync(auditLog) ? await countAuditRequests(auditLog, skipDirect ? [wf.audit] : [wf.audit, direct.audit]) : [];
    const line = (label: string, a: string, b: string, c = '') => console.log(`${label.padEnd(46)} ${a.padStart(14)} ${b.padStart(14)} ${c.padStart(10)}`);
    console.log(`\ntenants ${n}, plan ${values.plan}, concurrency ${concurrency}, ${workerCount === 0 ? 'worker in this process' : `${workerCount} worker process${workerCount > 1 ? 'es' : ''}`}, K8S_QPS ${config.K8S_QPS}, K8S_BURST ${config.K8S_BURST}`);
    line('', 'workflow', 'direct', 'ratio');
    const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? (a / b).toFixed(2) : '–');
    if (singles > 0) {
      const a = percentile(single.workflow, 50);
      const b = percentile(single.direct, 50);
      line(`one tenant, p50 of ${singles}`, sec(a), sec(b), ratio(a, b));
    }
    line('all active after', sec(wf.allActiveMs), sec(direct.allActiveMs), ratio(wf.allActiveMs, direct.allActiveMs));
    const tw = n - wf.failed.length;
    const td = n - direct.failed.length;
    line('throughput (tenants/min)', perMin(tw, wf.allActiveMs), perMin(td, direct.allActiveMs), ratio(tw / wf.allActiveMs, td / direct.allActiveMs));
    line('time to active p50', sec(percentile(wf.activeMs, 50)), sec(percentile(direct.activeMs, 50)), ratio(percentile(wf.activeMs, 50), percentile(direct.activeMs, 50)));
    line('time to active p95', sec(percentile(wf.activeMs, 95)), sec(percentile(direct.activeMs, 95)), ratio(percentile(wf.activeMs, 95), percentile(direct.activeMs, 95)));
    line('teardown, all gone after', sec(wf.teardownMs), sec(direct.teardownMs), ratio(wf.teardownMs, direct.teardownMs));
    const per = (x: number) => (Number.isFinite(x) ? (x / n).toFixed(1) : '–');
    if (workerCount === 0) {
      line('Kubernetes requests/tenant (adapter)', per(wf.kubeRequests), per(direct.kubeRequests), ratio(wf.kubeRequests, direct.kubeRequests));
      line('helm runs/tenant', per(wf.helmRuns), per(direct.helmRuns), ratio(wf.helmRuns, direct.helmRuns));
    }
    if (wf.apiServer && direct.apiServer) {
      line('API server requests/tenant (all)', per(wf.apiServer.total), per(direct.apiServer.total), ratio(wf.apiServer.total, direct.apiServer.total));
      line('API server writes/tenant (all)', per(wf.apiServer.writes), per(direct.apiServer.writes), ratio(wf.apiServer.writes, direct.apiServer.writes));
    }
    const ours = (c: AuditCounts) => c.provisioner.total + c.helm.total;
    if (wfAudit) {
      const auditLine = (label: string, of: (c: AuditCounts) => number) =>
        line(label, per(of(wfAudit)), directAudit ? per(of(directAudit)) : '–', directAudit ? ratio(of(wfAudit), of(directAudit)) : '–');
      auditLine('requests/tenant, provisioner adapter (audit)', (c) => c.provisioner.total);
      auditLine('requests/tenant, helm (audit)', (c) => c.helm.total);
      auditLine('requests/tenant, provisioner + helm (audit)', ours);
      auditLine('requests/tenant, other clients (audit)', (c) => c.other.total);
    } else {
      console.log(
        `requests/tenant by client (audit): ${auditLog ? `no audit log at ${auditLog}` : 'KUBE_AUDIT_LOG is not set'}; ` +
          'a cluster the local stack creates now has one: npm run stack:down && npm run stack:up, then source .stack/env',
      );
    }
    if (objects !== undefined) {
      line('objects/tenant', String(objects), String(objects));
      if (wf.apiServer && direct.apiServer) line('API server requests per object', (wf.apiServer.total / n / objects).toFixed(2), (direct.apiServer.total / n / objects).toFixed(2));
      if (workerCount === 0) line('adapter + helm runs per object', ((wf.kubeRequests + wf.helmRuns) / n / objects).toFixed(2), ((direct.kubeRequests + direct.helmRuns) / n / objects).toFixed(2));
      if (wfAudit) line('provisioner + helm requests per object (audit)', (ours(wfAudit) / n / objects).toFixed(2), directAudit ? (ours(directAudit) / n / objects).toFixed(2) : '–');
    }
    if (wfAudit) {
      const verbs = (c: AuditCounts) =>
        AUDIT_CLIENTS.map((client) => `${client} ${Object.entries(c[client].byVerb).sort(([, x], [, y]) => y - x).map(([verb, k]) => `${verb} ${per(k)}`).join(' ') || '–'}`).join('; ');
      console.log(`requests/tenant by verb (audit), workflow: ${verbs(wfAudit)}`);
      if (directAudit) console.log(`requests/tenant by verb (audit), direct: ${verbs(directAudit)}`);
    }
    if (singles > 0) console.log(`workflow steps p50, one tenant: ${await stepDurations(singleIds)}`);
    console.log(`workflow steps p50, burst: ${await stepDurations(wfIds)}`);
    const cores = os.cpus().length;
    console.log(`CPU from start to all active, workflow: ${formatCpu(wf.cpu, n, wf.allActiveMs, cores)}`);
    if (!skipDirect) console.log(`CPU from start to all active, direct: ${formatCpu(direct.cpu, n, direct.allActiveMs, cores)}`);
    if (workerCount === 0) console.log(`peak RSS (this process: worker, direct path and client)  ${mib(peakInProcess)}`);
    for (const p of processes) {
      const heap = p.peakHeap();
      const parts = p.peakRssParts();
      console.log(`peak RSS worker process ${p.pid}  ${mib(p.peakRss())} (at the highest sample: ${mib(parts.anon)} anonymous, ${mib(parts.file)} file-backed; V8 heap: peak used ${mib(heap.used)}, peak allocated ${mib(heap.total)}${heapMb ? `, old space capped at ${heapMb} MiB` : ''}${semiSpaceMb ? `, semi-space at ${semiSpaceMb} MiB` : ''})`);
    }
    const failed = [...wf.failed, ...direct.failed];
    const leaked = [...left.namespaces, ...left.releases.map((r) => `release in ${r}`), ...notDeprovisioned.map((r) => `tenant row ${r.id} ${r.status}`)];
    console.log(`failed ${failed.length}, duplicated ${dups.length}, leaked ${leaked.length}`);
    for (const f of failed.slice(0, 20)) console.log(`  failed ${f.tenantId}: ${f.error}`);
    for (const d of dups.slice(0, 20)) console.log(`  duplicated ${d}`);
    for (const l of leaked.slice(0, 20)) console.log(`  leaked ${l}`);
    if (failed.length || dups.length || leaked.length) exitCode = 1;
  } finally {
    clearInterval(sampler);
    stopInProcess?.();
    await inProcessDone;
    await workerConnectionClose?.();
    for (const p of processes) {
      const code = await p.stop();
      if (code !== 0) {
        console.error(`worker process ${p.pid} exited with ${code}:\n${p.tail()}`);
        exitCode = 1;
      }
    }
    if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
    await connection.close();
    await Promise.all([db.$disconnect(), base.db.$disconnect()]);
    await dropDatabase(config.DATABASE_URL);
  }
  process.exitCode = exitCode;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
