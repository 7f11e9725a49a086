/**
 * Worker process: runs ProvisionTenant workflows and their activities.
 * Configuration comes from the environment (see src/config.ts); it is validated before anything
 * connects, and a bad value stops the process with the variable's name.
 */
import { Runtime, Worker, type NativeConnection, makeTelemetryFilterString, type State, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from './activities';
import { loadWorkerConfig, parseImageReference, type WorkerConfig } from './config';
import { helmTaskQueue } from './contract';
import { createDb } from './db/client';
import { createHelm, helmWorstCaseSeconds } from './helm/helm';
import { createReadinessWaiter } from './helm/readiness';
import { createPodExec } from './isolation/exec';
import { createKube, loadKubeConfig } from './k8s/client';
import { TENANT_APP_PORT } from './k8s/network-policies';
import { watcherFor } from './k8s/watch';
import { loadPlanCatalogue } from './plans';
import { createLogger, temporalLogger } from './logging';
import { activityObservability, createWorkerMetrics, startHealthServer } from './observability';
import { temporalDataConverter } from './temporal/codec';
import { describeTemporalConnection } from './temporal/connection';
import { connectTemporalWorker } from './temporal/native';

export function activityDepsFromConfig(config: WorkerConfig): ActivityDeps {
  const kc = loadKubeConfig(config.KUBECONFIG);
  return {
    db: createDb(config.DATABASE_URL, { maxConnections: Math.min(config.WORKER_MAX_ACTIVITIES + config.WORKER_MAX_HELM_ACTIVITIES, 20) }),
    kube: createKube(kc, {
      qps: config.K8S_QPS,
      burst: config.K8S_BURST,
      timeoutMs: config.K8S_TIMEOUT_MS,
    }),
    helm: createHelm({ binary: config.HELM_BIN, kubeconfig: config.KUBECONFIG, readiness: createReadinessWaiter(watcherFor(kc)) }),
    plans: loadPlanCatalogue(config.PLANS_JSON),
    ...(config.ISOLATION_CHECK ? { exec: createPodExec(kc) } : {}),
    settings: {
      namespacePrefix: config.NAMESPACE_PREFIX,
      ingressNamespace: config.INGRESS_NAMESPACE,
      network: {
        clusterCidrs: [...config.CLUSTER_POD_CIDRS, ...config.CLUSTER_SERVICE_CIDRS, ...config.CLUSTER_NODE_CIDRS],
        ingressPodSelector: config.INGRESS_POD_SELECTOR,
        appPort: TENANT_APP_PORT,
      },
      chart: config.TENANT_CHART,
      helmTimeoutSeconds: config.HELM_TIMEOUT_SECONDS,
      // TENANT_IMAGE names the whole image; the older pair overrides repository and tag alone.
      image: config.TENANT_IMAGE ? parseImageReference(config.TENANT_IMAGE) : { repository: config.TENANT_IMAGE_REPOSITORY, tag: config.TENANT_IMAGE_TAG },
      udpPort: config.TENANT_UDP_PORT,
      placement: config.TENANT_POD_PLACEMENT,
      ...(config.ISOLATION_CHECK
        ? {
            isolationCheck: {
              sentinelNamespace: config.ISOLATION_SENTINEL_NAMESPACE,
              sentinelSelector: config.ISOLATION_SENTINEL_SELECTOR,
              sentinelPort: TENANT_APP_PORT,
              probeCommand: config.ISOLATION_PROBE_COMMAND,
              deniedTimeoutMs: config.ISOLATION_DENIED_TIMEOUT_MS,
              smokeAttempts: 8,
            },
          }
        : {}),
    },
  };
}

/** How long a stopping worker lets running activities finish: Helm's worst case. */
export function shutdownGraceSeconds(config: Pick<WorkerConfig, 'HELM_TIMEOUT_SECONDS'>): number {
  return helmWorstCaseSeconds(config.HELM_TIMEOUT_SECONDS);
}

/**
 * The worker of the workflows and quick activities, and beside it the worker of the slow ones on
 * `<TASK_QUEUE>-helm`, run and stopped together.
 */
export class WorkerGroup {
  constructor(
    readonly main: Worker,
    readonly helm: Worker,
  ) {}

  get workers(): Worker[] {
    return [this.main, this.helm];
  }

  /** Runs both until SIGINT/SIGTERM (or `shutdown`); if one fails, the other is stopped too. */
  async run(): Promise<void> {
    const results = await Promise.allSettled(
      this.workers.map((w) =>
        w.run().catch((err: unknown) => {
          this.shutdown();
          throw err;
        }),
      ),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Runs both until `until` settles, then stops both and returns its result. */
  async runUntil<R>(until: Promise<R> | (() => Promise<R>)): Promise<R> {
    const promise = typeof until === 'function' ? until() : until;
    const results = await Promise.allSettled(this.workers.map((w) => w.runUntil(promise)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return (results[0] as PromiseFulfilledResult<R>).value;
  }

  shutdown(): void {
    for (const w of this.workers) if (w.getState() === 'RUNNING') w.shutdown();
  }

  /** The state of the group: the first worker not running, else RUNNING. */
  getState(): State {
    return this.workers.map((w) => w.getState()).find((s) => s !== 'RUNNING') ?? 'RUNNING';
  }
}

export async function createWorker(
  config: WorkerConfig,
  deps: ActivityDeps,
  overrides: Partial<WorkerOptions> = {},
): Promise<{ worker: WorkerGroup; connection: NativeConnection }> {
  const connection = await connectTemporalWorker(config);
  const activities = createActivities(deps);
  const dataConverter = temporalDataConverter(config);
  // On SIGTERM running activities get this long before they are cancelled: a `helm upgrade`
  // cut short leaves the release locked, so wait out Helm's worst case (the chart's
  // terminationGracePeriodSeconds is longer still).
  const shutdownGraceTime = `${shutdownGraceSeconds(config)}s`;
  const main = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TASK_QUEUE,
    dataConverter,
    // A bundle built at image build time (WORKFLOW_BUNDLE), else the sources bundled now.
    ...(config.WORKFLOW_BUNDLE ? { workflowBundle: { codePath: config.WORKFLOW_BUNDLE } } : { workflowsPath: require.resolve('./workflows') }),
    activities,
    // Bounds how many Kubernetes operations one worker runs at once, so a burst of signups
    // queues in Temporal instead of overwhelming the API server.
    maxConcurrentActivityTaskExecutions: config.WORKER_MAX_ACTIVITIES,
    // The quick steps run as local activities (see workflows/proxies.ts): the same bound.
    maxConcurrentLocalActivityExecutions: config.WORKER_MAX_ACTIVITIES,
    maxConcurrentWorkflowTaskExecutions: config.WORKER_MAX_WORKFLOW_TASKS,
    // Memory grows with the runs kept in cache; an evicted run is replayed on its next task.
    maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
    reuseV8Context: config.WORKER_REUSE_V8_CONTEXT,
    shutdownGraceTime,
    ...overrides,
  });
  // Helm and namespace deletion take seconds to minutes: their own slots, so a burst of them
  // never leaves the quick steps of other tenants waiting for a slot.
  const helm = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: helmTaskQueue(config.TASK_QUEUE),
    dataConverter,
    activities,
    maxConcurrentActivityTaskExecutions: config.WORKER_MAX_HELM_ACTIVITIES,
    shutdownGraceTime,
    ...(overrides.interceptors?.activity ? { interceptors: { activity: overrides.interceptors.activity } } : {}),
  });
  return { worker: new WorkerGroup(main, helm), connection };
}

async function main(): Promise<void> {
  const config = loadWorkerConfig();
  const logger = createLogger({ service: 'tenant-provisioner-worker', level: config.LOG_LEVEL });
  // One JSON log stream: the SDK's own lines (core included), workflow and activity lines, all via pino.
  const coreLevel = ({ trace: 'TRACE', debug: 'DEBUG', info: 'INFO', warn: 'WARN' } as const)[config.LOG_LEVEL as 'trace'] ?? 'ERROR';
  Runtime.install({
    logger: temporalLogger(logger),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: coreLevel, other: 'WARN' }), forward: {} },
      // Task-queue lag, activity latencies and failures, slots in use: what an operator watches.
      ...(config.WORKER_METRICS_BIND ? { metrics: { prometheus: { bindAddress: config.WORKER_METRICS_BIND } } } : {}),
    },
  });
  const metrics = createWorkerMetrics();
  const deps = activityDepsFromConfig(config);
  // The health port answers while the worker is still being created (bundling takes seconds).
  const current: { worker?: WorkerGroup } = {};
  const health = config.WORKER_HEALTH_BIND ? await startHealthServer(config.WORKER_HEALTH_BIND, () => current.worker?.getState(), metrics) : undefined;
  const { worker, connection } = await createWorker(config, deps, { interceptors: { activity: [activityObservability(metrics)] } });
  current.worker = worker;
  logger.info(
    {
      taskQueue: config.TASK_QUEUE,
      helmTaskQueue: helmTaskQueue(config.TASK_QUEUE),
      temporal: describeTemporalConnection(config),
      namespace: config.TEMPORAL_NAMESPACE,
      maxActivities: config.WORKER_MAX_ACTIVITIES,
      maxHelmActivities: config.WORKER_MAX_HELM_ACTIVITIES,
      maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
      healthPort: health?.port,
    },
    'worker polling',
  );
  try {
    await worker.run(); // returns after SIGINT/SIGTERM once in-flight tasks finish
  } finally {
    await connection.close();
    await deps.db.$disconnect();
    await health?.close();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
