import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode, type WorkerOptions } from '@temporalio/worker';
import type { ActivityDeps } from '../../src/activities';
import { helmTaskQueue, tenantWorkflowId } from '../../src/contract';
import { createDb, type Db } from '../../src/db/client';
import { createHelm } from '../../src/helm/helm';
import { loadPlanCatalogue } from '../../src/plans';
import { temporalDataConverter } from '../../src/temporal/codec';
import { connectTemporalClient, temporalSettingsFromEnv } from '../../src/temporal/connection';
import { connectTemporalWorker } from '../../src/temporal/native';
import { WorkerGroup } from '../../src/worker';
import { createKube, loadKubeConfig, type Kube } from '../../src/k8s/client';

export const ROOT = path.resolve(__dirname, '../..');

// Worker state changes and the failures tests provoke on purpose are noise; errors still show.
try {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
} catch {
  // already installed in this Jest worker
}

export function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the integration tests through \`npm test\` with the stack up`);
  return v;
}

export const newTenantId = (): string => randomUUID();
/**
 * Runs activities outside a worker, as if inside the tenant's own workflow run. The step log keys
 * its rows by workflow run, so each tenant needs its own run, not the test environment's shared one.
 */
export const activityEnvFor = (tenantId: string, attempt = 1): MockActivityEnvironment =>
  new MockActivityEnvironment({ attempt, workflowExecution: { workflowId: tenantWorkflowId(tenantId), runId: randomUUID() } });

export const uniqueTaskQueue = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

export function testKube(kubeconfig = env('KUBECONFIG')): Kube {
  return createKube(loadKubeConfig(kubeconfig), { qps: 50, burst: 100, timeoutMs: 15_000 });
}

export function testDb(): Db {
  return createDb(env('DATABASE_URL'), { maxConnections: 5 });
}

export async function temporalClient(): Promise<{ client: Client; connection: Connection }> {
  env('TEMPORAL_ADDRESS');
  return connectTemporalClient(temporalSettingsFromEnv(), 10_000);
}

/** A Temporal client for the whole test file: connected before the first test, closed after the last. */
export function useTemporalClient(): { readonly client: Client } {
  let t: { client: Client; connection: Connection } | undefined;
  beforeAll(async () => {
    t = await temporalClient();
  });
  afterAll(async () => {
    await t?.connection.close();
  });
  return {
    get client(): Client {
      if (!t) throw new Error('the Temporal client is used before beforeAll connected it');
      return t.client;
    },
  };
}

const bundles = new Map<string, Promise<{ code: string }>>();

/** Bundles workflow code once per test file (webpack takes a few seconds). */
export function workflowBundle(workflowsPath: string): Promise<{ code: string }> {
  let b = bundles.get(workflowsPath);
  if (!b) {
    b = bundleWorkflowCode({ workflowsPath, logger: { ...silentLogger } });
    bundles.set(workflowsPath, b);
  }
  return b;
}

const noop = () => undefined;
const silentLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };

/**
 * Runs `fn` while real workers poll `taskQueue` and its Helm queue (the same activities on both,
 * as the worker process runs them) on the real Temporal server.
 */
export async function withWorker<T>(
  options: { taskQueue: string; workflowsPath: string; activities: object } & Partial<WorkerOptions>,
  fn: () => Promise<T>,
): Promise<T> {
  const { workflowsPath, ...rest } = options;
  env('TEMPORAL_ADDRESS');
  const connection = await connectTemporalWorker(temporalSettingsFromEnv());
  try {
    const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
    // The stack's payload codec, if its environment sets one (TEMPORAL_PAYLOAD_KEYS), as the worker has it.
    const dataConverter = temporalDataConverter(temporalSettingsFromEnv());
    const worker = await Worker.create({ connection, namespace, workflowBundle: await workflowBundle(workflowsPath), dataConverter, ...rest });
    const helm = await Worker.create({ connection, namespace, taskQueue: helmTaskQueue(rest.taskQueue), activities: rest.activities, dataConverter });
    return await new WorkerGroup(worker, helm).runUntil(fn());
  } finally {
    await connection.close();
  }
}

/** Polls `probe` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(probe: () => Promise<T | undefined | false>, timeoutMs = 60_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The real activity dependencies (PostgreSQL, Kubernetes, Helm) as the worker wires them. */
export function realDeps(db: Db, overrides: { chart?: string; kubeconfig?: string } = {}): ActivityDeps {
  const kubeconfig = overrides.kubeconfig ?? env('KUBECONFIG');
  return {
    db,
    kube: testKube(kubeconfig),
    helm: createHelm({ binary: 'helm', kubeconfig }),
    plans: loadPlanCatalogue(),
    settings: {
      namespacePrefix: 'tenant',
      ingressNamespace: 'ingress-nginx',
      chart: overrides.chart ?? path.join(ROOT, 'charts/tenant'),
      helmTimeoutSeconds: 120,
    },
  };
}
