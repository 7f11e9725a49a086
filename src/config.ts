/**
 * Configuration from environment variables, validated once at start-up. A bad value stops the
 * process with a message naming the variable, instead of failing later inside a workflow.
 */
import path from 'node:path';
import { z } from 'zod';
import { TASK_QUEUE_DEFAULT } from './contract';
import { parseLabelSelector } from './k8s/labels';
import { temporalEnv } from './temporal/settings';
import { isIpv4Cidr } from './k8s/network-policies';
import { zodIssues } from './validation';

const PROJECT_ROOT = path.resolve(__dirname, '..');

const IMAGE_REFERENCE = /^[a-z0-9][a-z0-9._\-/:]*[a-z0-9](:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})?$/;

const toleration = z.strictObject({
  key: z.string().optional(),
  operator: z.enum(['Equal', 'Exists']).optional(),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.int().optional(),
});

export const placementSchema = z.strictObject({
  nodeSelector: z.record(z.string(), z.string()).optional(),
  tolerations: z.array(toleration).max(20).optional(),
});

/** Where tenant pods run: the tenant chart's nodeSelector and tolerations. */
export type Placement = z.infer<typeof placementSchema>;

function parsePlacement(text: string, ctx: z.RefinementCtx): Placement {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `must be JSON like {"nodeSelector":{"kind":"tenant"},"tolerations":[]} (${(err as Error).message})` });
    return z.NEVER;
  }
  const parsed = placementSchema.safeParse(raw);
  if (!parsed.success) {
    ctx.addIssue({ code: 'custom', message: `must be {"nodeSelector":{…},"tolerations":[…]}: ${z.prettifyError(parsed.error).replace(/\n/g, ' ')}` });
    return z.NEVER;
  }
  return parsed.data;
}

const cidrList = z
  .string()
  .transform((v) => v.split(',').map((c) => c.trim()).filter(Boolean))
  .pipe(z.array(z.string().refine(isIpv4Cidr, 'must be comma-separated IPv4 CIDRs, e.g. 10.96.0.0/12,10.244.0.0/16')));

/** `k=v,k2=v2` as matchLabels. */
function parseSelector(text: string, ctx: z.RefinementCtx): Record<string, string> {
  try {
    return parseLabelSelector(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
}

const dnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label (lowercase letters, digits, "-")').max(63);
export const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** What the worker and the API both read: where PostgreSQL and Temporal are, plans, log level. */
export const sharedEnv = {
  DATABASE_URL: z.string({ error: 'is required' }).startsWith('postgres', 'must be a postgresql:// URL').pipe(z.url('must be a postgresql:// URL')),
  ...temporalEnv,
  TASK_QUEUE: z.string().min(1).default(TASK_QUEUE_DEFAULT),
  PLANS_JSON: z.string().optional(),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
};

const schema = z.object({
  ...sharedEnv,
  KUBECONFIG: z.string().optional(),
  HELM_BIN: z.string().default('helm'),
  TENANT_CHART: z.string().default(path.join(PROJECT_ROOT, 'charts/tenant')),
  /** The tenant app's image, a full reference (`registry/repo:tag` or `repo@sha256:…`); unset: the chart's. */
  TENANT_IMAGE: z.string().regex(IMAGE_REFERENCE, 'must be an image reference, e.g. registry.example/app:1.2 or app@sha256:<64 hex>').optional(),
  TENANT_IMAGE_REPOSITORY: z.string().optional(),
  TENANT_IMAGE_TAG: z.string().optional(),
  /** A UDP port the tenant app listens on besides HTTP (exposed on its Service); unset: none. */
  TENANT_UDP_PORT: int(1, 65535).optional(),
  /** Where tenant pods run: JSON `{"nodeSelector":{…},"tolerations":[…]}`; unset: anywhere. */
  TENANT_POD_PLACEMENT: z.string().transform(parsePlacement).optional(),
  // At most 420 s: `--atomic`'s worst case (install wait + rollback wait + 60 s) must fit in the
  // 15-minute timeout of the activities that run helm.
  HELM_TIMEOUT_SECONDS: int(10, 420).default(300),
  INGRESS_NAMESPACE: dnsLabel.default('ingress-nginx'),
  /** Labels of the ingress controller's pods (`k=v,k2=v2`): only they may reach a tenant's app port. */
  INGRESS_POD_SELECTOR: z.string().transform(parseSelector).default({ 'app.kubernetes.io/name': 'ingress-nginx' }),
  /** The cluster's pod, Service and node ranges: never "internet" for a plan with internet egress. */
  CLUSTER_POD_CIDRS: cidrList.default(['10.244.0.0/16']),
  CLUSTER_SERVICE_CIDRS: cidrList.default(['10.96.0.0/12']),
  CLUSTER_NODE_CIDRS: cidrList.default([]),
  /** The per-tenant isolation check after deployApp: needs nodes that run pods and enforce policies (off on kwok). */
  ISOLATION_CHECK: z.enum(['on', 'off'], { error: 'must be on or off' }).default('off').transform((v) => v === 'on'),
  ISOLATION_SENTINEL_NAMESPACE: dnsLabel.default('tenant-provisioner-sentinel'),
  ISOLATION_SENTINEL_SELECTOR: z.string().min(1).default('app.kubernetes.io/name=isolation-sentinel'),
  ISOLATION_PROBE_COMMAND: z.string().default('/tenant-app probe').transform((v) => v.split(/\s+/).filter(Boolean)),
  /** How long a probe that must be denied waits for the dropped packet. */
  ISOLATION_DENIED_TIMEOUT_MS: int(100, 5_000).default(250),
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

/** An image as the tenant chart's values name it. */
export interface ImageRef {
  repository: string;
  tag?: string;
  digest?: string;
}

/** Splits `registry:5000/repo:tag` or `repo@sha256:…` into the tenant chart's image values (tag `latest` when absent). */
export function parseImageReference(ref: string): ImageRef {
  const at = ref.indexOf('@');
  if (at >= 0) return { repository: ref.slice(0, at), digest: ref.slice(at + 1) };
  const colon = ref.lastIndexOf(':');
  // A colon before the last slash is a registry port, not a tag.
  if (colon > ref.lastIndexOf('/')) return { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repository: ref, tag: 'latest' };
}

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
    const problems = zodIssues(parsed.error)
      .map(({ path, message }) => {
        const [name, index] = path.split('.');
        return `  ${name}: ${index !== undefined ? `value ${Number(index) + 1} of the list: ` : ''}${message}`;
      })
      .join('\n');
    throw new ConfigError(`invalid ${what}:\n${problems}`);
  }
  return parsed.data;
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  return parseEnv(schema, env, 'configuration');
}
