/**
 * Readiness of a release's objects, judged the way `helm --wait` (Helm 3.22, pkg/kube/ready.go)
 * judges them, but from Kubernetes watches instead of a poll every 2 seconds: the release is
 * reported ready within milliseconds of its last Deployment becoming ready.
 */
import type { KubernetesObject, V1Deployment, V1Service } from '@kubernetes/client-node';
import { collectionPath, type OpenWatch, type WatchStream } from '../k8s/watch';

export interface Judgement {
  ready: boolean;
  /** Why not, for the error a person reads when the wait times out. */
  reason?: string;
}

const READY: Judgement = { ready: true };

/** `intstr.GetValueFromIntOrPercent`: a number, or "NN%" of `total`, rounded up or down. */
function scaled(value: number | string | undefined, total: number, roundUp: boolean): number {
  if (value === undefined) return 0;
  if (typeof value === 'number') return value;
  const m = /^(\d+)%$/.exec(value);
  if (!m) return Number.parseInt(value, 10) || 0;
  const v = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(v) : Math.floor(v);
}

/** Kubernetes' `deploymentutil.MaxUnavailable`, which Helm subtracts from the replicas it waits for. */
export function maxUnavailable(d: V1Deployment): number {
  const replicas = d.spec?.replicas ?? 1;
  const strategy = d.spec?.strategy;
  if ((strategy?.type ?? 'RollingUpdate') !== 'RollingUpdate' || replicas === 0) return 0;
  // The API server defaults both to 25%.
  const surge = scaled(strategy?.rollingUpdate?.maxSurge ?? '25%', replicas, true);
  let unavailable = scaled(strategy?.rollingUpdate?.maxUnavailable ?? '25%', replicas, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return Math.min(unavailable, replicas);
}

/**
 * Helm's judgement of a Deployment: a paused one counts as ready; otherwise the controller has
 * observed the current generation and the new ReplicaSet has at least `replicas - maxUnavailable`
 * ready pods (so 0 replicas is ready as soon as the generation is observed). The Deployment's
 * status does not say how many of its ready pods belong to the new ReplicaSet, so pods of old
 * ReplicaSets are assumed ready: the judgement is never earlier than Helm's, and equal to it once
 * the old pods are gone.
 */
export function deploymentReadiness(d: V1Deployment): Judgement {
  if (d.spec?.paused) return READY;
  const generation = d.metadata?.generation ?? 0;
  const observed = d.status?.observedGeneration ?? 0;
  if (observed < generation) return { ready: false, reason: `observedGeneration ${observed} is behind generation ${generation}` };
  const expected = (d.spec?.replicas ?? 1) - maxUnavailable(d);
  if (expected <= 0) return READY;
  const updated = d.status?.updatedReplicas ?? 0;
  const oldPods = Math.max(0, (d.status?.replicas ?? 0) - updated);
  const newReady = Math.min(updated, (d.status?.readyReplicas ?? 0) - oldPods);
  if (newReady >= expected) return READY;
  return { ready: false, reason: `${Math.max(0, newReady)} of ${expected} expected pods are ready` };
}

/** Helm's judgement of a Service: a cluster IP, and for a LoadBalancer an ingress or external IPs. */
export function serviceReadiness(s: V1Service): Judgement {
  if (s.spec?.type === 'ExternalName') return READY;
  if (!s.spec?.clusterIP) return { ready: false, reason: 'no cluster IP yet' };
  if (s.spec.type === 'LoadBalancer' && !(s.spec.externalIPs?.length) && !(s.status?.loadBalancer?.ingress?.length)) {
    return { ready: false, reason: 'no load balancer ingress yet' };
  }
  return READY;
}

const JUDGED = { Deployment: deploymentReadiness, Service: serviceReadiness } as const;
type JudgedKind = keyof typeof JUDGED;

/**
 * Kinds `helm --wait` also checks (without `--wait-for-jobs`) that this wait does not judge: a
 * chart that renders one cannot be waited for here, and says so instead of reporting it ready.
 */
const UNJUDGED = new Set(['Pod', 'PersistentVolumeClaim', 'DaemonSet', 'StatefulSet', 'ReplicaSet', 'ReplicationController', 'CustomResourceDefinition']);

export interface ReleaseObject {
  kind: string;
  name: string;
}

/** The objects of a rendered manifest whose readiness the wait judges; throws for kinds it cannot judge. */
export function objectsToWatch(manifestDocs: unknown[]): Array<{ kind: JudgedKind; name: string }> {
  const out: Array<{ kind: JudgedKind; name: string }> = [];
  for (const doc of manifestDocs) {
    if (!doc || typeof doc !== 'object') continue;
    const { kind, metadata } = doc as KubernetesObject;
    const name = metadata?.name;
    if (!kind || !name) continue;
    if (kind in JUDGED) out.push({ kind: kind as JudgedKind, name });
    else if (UNJUDGED.has(kind)) throw new UnjudgedKindError(kind, name);
  }
  return out;
}

export class UnjudgedKindError extends Error {
  override name = 'UnjudgedKindError';
  constructor(
    readonly kind: string,
    readonly objectName: string,
  ) {
    super(`the readiness wait cannot judge ${kind} ${objectName}; only Deployments and Services are judged`);
  }
}

export class NotReadyError extends Error {
  override name = 'NotReadyError';
  constructor(
    readonly why: 'timeout' | 'cancelled',
    /** `Kind/name: reason` of each object still not ready. */
    readonly pending: string[],
  ) {
    super(`${why === 'timeout' ? 'timed out waiting for' : 'cancelled while waiting for'} ${pending.join('; ') || 'the release'}`);
  }
}

export interface ReadinessRequest {
  namespace: string;
  objects: ReleaseObject[];
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface ReadinessWaiter {
  /** Resolves once every object is ready; rejects with NotReadyError on timeout or abort. */
  waitReady(req: ReadinessRequest): Promise<void>;
}

/**
 * One watch per kind in the release's namespace. A watch the server ends (its own timeout, an
 * apiserver restart, a 410 Gone) is opened again after a short pause; everything is bounded by
 * the request's timeout.
 */
export function createReadinessWaiter(openWatch: OpenWatch, options: { reconnectDelayMs?: number } = {}): ReadinessWaiter {
  const reconnectDelayMs = options.reconnectDelayMs ?? 250;
  return {
    waitReady(req) {
      const wanted = req.objects.filter((o): o is { kind: JudgedKind; name: string } => o.kind in JUDGED);
      if (wanted.length === 0) return Promise.resolve();
      const state = new Map<string, Judgement>(wanted.map((o) => [`${o.kind}/${o.name}`, { ready: false, reason: 'not seen yet' }]));
      const pending = () => [...state].filter(([, j]) => !j.ready).map(([k, j]) => `${k}: ${j.reason ?? 'not ready'}`);
      const kinds = [...new Set(wanted.map((o) => o.kind))];

      return new Promise<void>((resolve, reject) => {
        let finished = false;
        const streams = new Set<WatchStream>();
        const timers = new Set<NodeJS.Timeout>();
        const finish = (err?: Error) => {
          if (finished) return;
          finished = true;
          for (const t of timers) clearTimeout(t);
          for (const s of streams) s.stop();
          req.signal?.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve();
        };
        const onAbort = () => finish(new NotReadyError('cancelled', pending()));
        const deadline = Date.now() + req.timeoutMs;
        timers.add(setTimeout(() => finish(new NotReadyError('timeout', pending())), req.timeoutMs));
        if (req.signal?.aborted) return onAbort();
        req.signal?.addEventListener('abort', onAbort, { once: true });

        const open = (kind: JudgedKind) => {
          if (finished) return;
          const names = wanted.filter((o) => o.kind === kind).map((o) => o.name);
          const remaining = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
          const query: Record<string, string | number | boolean> = { timeoutSeconds: remaining, allowWatchBookmarks: false };
          if (names.length === 1) query.fieldSelector = `metadata.name=${names[0]}`;
          const stream = openWatch(collectionPath(kind, req.namespace), query, (type, obj) => {
            const key = `${kind}/${obj.metadata?.name ?? ''}`;
            if (!state.has(key)) return;
            if (type === 'ADDED' || type === 'MODIFIED') state.set(key, JUDGED[kind](obj));
            else if (type === 'DELETED') state.set(key, { ready: false, reason: 'deleted' });
            if (pending().length === 0) finish();
          });
          streams.add(stream);
          void stream.ended.then(() => {
            streams.delete(stream);
            if (finished) return;
            const t = setTimeout(() => {
              timers.delete(t);
              open(kind);
            }, reconnectDelayMs);
            timers.add(t);
          });
        };
        for (const kind of kinds) open(kind);
      });
    },
  };
}
