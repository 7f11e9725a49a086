/**
 * Configuration from environment variables, validated once at start-up. A bad value stops the
 * process with a message naming the variable, instead of failing later inside a workflow.
 */
import path from 'node:path';
import { z } from 'zod';
import { TASK_QUEUE_DEFAULT } from './contract';

const PROJECT_ROOT = path.resolve(__dirname, '..');

const dnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label (lowercase letters, digits, "-")').max(63);
export const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** What the worker and the API both read: where PostgreSQL and Temporal are, plans, log level. */
export const sharedEnv = {
  DATABASE_URL: z.string({ error: 'is required' }).startsWith('postgres', 'must be a postgresql:// URL').pipe(z.url('must be a postgresql:// URL')),
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TASK_QUEUE: z.string().min(1).default(TASK_QUEUE_DEFAULT),
  PLANS_JSON: z.string().optional(),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
};

const schema = z.object({
  ...sharedEnv,
  KUBECONFIG: z.string().optional(),
  HELM_BIN: z.string().default('helm'),
  TENANT_CHART: z.string().default(path.join(PROJECT_ROOT, 'charts/tenant')),
  TENANT_IMAGE_REPOSITORY: z.string().optional(),
  TENANT_IMAGE_TAG: z.string().optional(),
  // At most 420 s: `--atomic`'s worst case (install wait + rollback wait + 60 s) must fit in the
  // 15-minute timeout of the activities that run helm.
  HELM_TIMEOUT_SECONDS: int(10, 420).default(300),
  INGRESS_NAMESPACE: dnsLabel.default('ingress-nginx'),
  NAMESPACE_PREFIX: dnsLabel.max(26).default('tenant'),
  K8S_QPS: z.coerce.number().positive().default(50),
  K8S_BURST: int(1, 1000).default(100),
  K8S_TIMEOUT_MS: int(1000, 120_000).default(15_000),
  WORKER_MAX_ACTIVITIES: int(1, 500).default(20),
  WORKER_MAX_WORKFLOW_TASKS: int(1, 500).default(40),
  /** Slots of the second worker, which runs the Helm activities and namespace deletion on `<TASK_QUEUE>-helm`. */
  WORKER_MAX_HELM_ACTIVITIES: int(1, 500).default(10),
  /**
   * Workflow runs kept in memory between their tasks; an evicted run is replayed from history
   * when its next task comes. The SDK's default grows with the heap limit (thousands on a large
   * machine), and with it the worker's memory.
   */
  WORKER_MAX_CACHED_WORKFLOWS: int(0, 100_000).default(100),
  /** One V8 context for all cached runs (the SDK's default) instead of one per run. */
  WORKER_REUSE_V8_CONTEXT: z.enum(['true', 'false'], { error: 'must be true or false' }).default('true').transform((v) => v === 'true'),
  /** Where the worker serves Temporal SDK metrics for Prometheus (e.g. 0.0.0.0:9464); unset: off. */
  WORKER_METRICS_BIND: z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port, e.g. 0.0.0.0:9464').optional(),
  /** Workflow code bundled at build time (dist/workflow-bundle.js in the image); unset: bundle at start. */
  WORKFLOW_BUNDLE: z.string().optional(),
  /** Where the worker serves /healthz, /readyz and its business metrics (e.g. 0.0.0.0:8081); unset: off. */
  WORKER_HEALTH_BIND: z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port, e.g. 0.0.0.0:8081').optional(),
});

export type WorkerConfig = z.infer<typeof schema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Blank values count as unset: deployment templates render unset variables as "". */
function withoutBlanks(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1].trim() !== ''));
}

/**
 * Parses the environment with `schema`, blank values counting as unset, or throws one
 * ConfigError naming every bad variable.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>, what: string): z.infer<S> {
  const parsed = schema.safeParse(withoutBlanks(env));
  if (!parsed.success) {
    // Named by variable; an item of a comma-separated list by its position, never its value.
    const problems = parsed.error.issues.map((i) => `  ${String(i.path[0])}: ${i.path.length > 1 ? `value ${Number(i.path[1]) + 1} of the list: ` : ''}${i.message}`).join('\n');
    throw new ConfigError(`invalid ${what}:\n${problems}`);
  }
  return parsed.data;
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  return parseEnv(schema, env, 'configuration');
}
