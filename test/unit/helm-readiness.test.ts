/**
 * The readiness wait: Helm's judgement of Deployments and Services, and the watch loop that
 * applies it, against a fake watch that plays the API server's events.
 */
import type { KubernetesObject, V1Deployment, V1DeploymentStrategy } from '@kubernetes/client-node';
import {
  NotReadyError,
  UnjudgedKindError,
  createReadinessWaiter,
  deploymentReadiness,
  maxUnavailable,
  objectsToWatch,
  serviceReadiness,
} from '../../src/helm/readiness';
import type { OpenWatch, WatchEventType } from '../../src/k8s/watch';

function deployment(o: {
  replicas?: number;
  generation?: number;
  observed?: number;
  updated?: number;
  total?: number;
  ready?: number;
  paused?: boolean;
  strategy?: V1DeploymentStrategy;
}): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'tenant-app', generation: o.generation ?? 1 },
    spec: {
      replicas: o.replicas ?? 1,
      paused: o.paused,
      selector: {},
      template: {},
      strategy: o.strategy ?? { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
    },
    status: { observedGeneration: o.observed ?? 1, updatedReplicas: o.updated, replicas: o.total, readyReplicas: o.ready },
  };
}

describe('deploymentReadiness (Helm 3 --wait)', () => {
  it('is not ready until the controller has observed the current generation', () => {
    expect(deploymentReadiness(deployment({ generation: 2, observed: 1, updated: 1, total: 1, ready: 1 }))).toEqual({
      ready: false,
      reason: 'observedGeneration 1 is behind generation 2',
    });
    expect(deploymentReadiness(deployment({ generation: 2, observed: 2, updated: 1, total: 1, ready: 1 })).ready).toBe(true);
  });

  it('waits for every replica of the new ReplicaSet when maxUnavailable is 0', () => {
    expect(deploymentReadiness(deployment({ replicas: 2, updated: 2, total: 2, ready: 1 }))).toEqual({ ready: false, reason: '1 of 2 expected pods are ready' });
    expect(deploymentReadiness(deployment({ replicas: 2, updated: 2, total: 2, ready: 2 })).ready).toBe(true);
  });

  it("does not count a rolling update's old pods as the new ones", () => {
    // Surge: the old pod is still ready, the new one is not.
    expect(deploymentReadiness(deployment({ generation: 2, observed: 2, updated: 1, total: 2, ready: 1 }))).toEqual({
      ready: false,
      reason: '0 of 1 expected pods are ready',
    });
    expect(deploymentReadiness(deployment({ generation: 2, observed: 2, updated: 1, total: 2, ready: 2 })).ready).toBe(true);
  });

  it('0 replicas is ready as soon as the generation is observed', () => {
    expect(deploymentReadiness(deployment({ replicas: 0, generation: 3, observed: 3 })).ready).toBe(true);
    expect(deploymentReadiness(deployment({ replicas: 0, generation: 3, observed: 2 })).ready).toBe(false);
  });

  it('a paused Deployment counts as ready, as Helm counts it', () => {
    expect(deploymentReadiness(deployment({ paused: true, generation: 5, observed: 1 })).ready).toBe(true);
  });

  it('allows maxUnavailable pods to be missing, resolved as Kubernetes resolves it', () => {
    const d = deployment({ replicas: 4, updated: 4, total: 4, ready: 3, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } } });
    expect(maxUnavailable(d)).toBe(1);
    expect(deploymentReadiness(d).ready).toBe(true);
    expect(deploymentReadiness({ ...d, status: { ...d.status, readyReplicas: 2 } }).ready).toBe(false);
    // Both fenceposts round to 0: Kubernetes makes maxUnavailable 1.
    expect(maxUnavailable(deployment({ replicas: 1, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: '10%' } } }))).toBe(1);
    expect(maxUnavailable(deployment({ replicas: 1, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '10%', maxUnavailable: '10%' } } }))).toBe(0);
    expect(maxUnavailable(deployment({ replicas: 3, strategy: { type: 'Recreate' } }))).toBe(0);
  });
});

describe('serviceReadiness', () => {
  it('needs a cluster IP, and for a LoadBalancer an ingress or external IPs', () => {
    expect(serviceReadiness({ spec: { type: 'ClusterIP', clusterIP: '10.0.0.5' } }).ready).toBe(true);
    expect(serviceReadiness({ spec: { type: 'ClusterIP' } }).ready).toBe(false);
    expect(serviceReadiness({ spec: { type: 'ExternalName' } }).ready).toBe(true);
    expect(serviceReadiness({ spec: { type: 'LoadBalancer', clusterIP: '10.0.0.5' }, status: { loadBalancer: {} } }).ready).toBe(false);
    expect(serviceReadiness({ spec: { type: 'LoadBalancer', clusterIP: '10.0.0.5' }, status: { loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } } }).ready).toBe(true);
  });
});

describe('objectsToWatch', () => {
  it('keeps Deployments and Services, skips what Helm does not wait for, refuses what it cannot judge', () => {
    const docs = [
      { kind: 'ConfigMap', metadata: { name: 'c' } },
      { kind: 'Deployment', metadata: { name: 'd' } },
      null,
      { kind: 'Service', metadata: { name: 's' } },
    ];
    expect(objectsToWatch(docs)).toEqual([
      { kind: 'Deployment', name: 'd' },
      { kind: 'Service', name: 's' },
    ]);
    expect(() => objectsToWatch([{ kind: 'StatefulSet', metadata: { name: 'db' } }])).toThrow(UnjudgedKindError);
  });
});

/** A watch the test drives: `emit` plays an event on the open stream of a path, `end` closes it. */
function fakeWatch() {
  const streams: Array<{ path: string; query: Record<string, unknown>; onEvent: (t: WatchEventType, o: KubernetesObject) => void; end: (e: Error | null) => void; stopped: boolean }> = [];
  const open: OpenWatch = (path, query, onEvent) => {
    let end!: (e: Error | null) => void;
    const ended = new Promise<Error | null>((r) => (end = r));
    const s = { path, query, onEvent, end, stopped: false };
    streams.push(s);
    return { ended, stop: () => ((s.stopped = true), end(null)) };
  };
  const live = (path: string) => streams.filter((s) => s.path === path && !s.stopped).at(-1);
  return { open, streams, live };
}

const DEPLOYMENTS = '/apis/apps/v1/namespaces/tenant-x/deployments';
const SERVICES = '/api/v1/namespaces/tenant-x/services';
const tick = () => new Promise((r) => setImmediate(r));

describe('createReadinessWaiter', () => {
  it('resolves on the event that makes the last object ready, and closes its watches', async () => {
    const w = fakeWatch();
    let done = false;
    const waiting = createReadinessWaiter(w.open)
      .waitReady({ namespace: 'tenant-x', objects: [{ kind: 'Deployment', name: 'tenant-app' }, { kind: 'Service', name: 'tenant-app' }], timeoutMs: 5_000 })
      .then(() => (done = true));
    await tick();
    expect(w.live(DEPLOYMENTS)?.query).toMatchObject({ fieldSelector: 'metadata.name=tenant-app' });
    w.live(SERVICES)!.onEvent('ADDED', { kind: 'Service', metadata: { name: 'tenant-app' }, spec: { clusterIP: '10.0.0.9' } } as KubernetesObject);
    w.live(DEPLOYMENTS)!.onEvent('ADDED', deployment({ updated: 1, total: 1, ready: 0 }));
    await tick();
    expect(done).toBe(false);
    w.live(DEPLOYMENTS)!.onEvent('MODIFIED', deployment({ updated: 1, total: 1, ready: 1 }));
    await waiting;
    expect(w.streams.every((s) => s.stopped)).toBe(true);
  });

  it('opens the watch again when the server ends it', async () => {
    const w = fakeWatch();
    const waiting = createReadinessWaiter(w.open, { reconnectDelayMs: 1 }).waitReady({ namespace: 'tenant-x', objects: [{ kind: 'Deployment', name: 'tenant-app' }], timeoutMs: 5_000 });
    await tick();
    w.live(DEPLOYMENTS)!.end(new Error('connection reset'));
    await new Promise((r) => setTimeout(r, 20));
    expect(w.streams).toHaveLength(2);
    w.live(DEPLOYMENTS)!.onEvent('ADDED', deployment({ updated: 1, total: 1, ready: 1 }));
    await expect(waiting).resolves.toBeUndefined();
  });

  it('times out naming what is not ready, and stops on abort', async () => {
    const w = fakeWatch();
    const timedOut = createReadinessWaiter(w.open).waitReady({ namespace: 'tenant-x', objects: [{ kind: 'Deployment', name: 'tenant-app' }], timeoutMs: 50 });
    await tick();
    w.live(DEPLOYMENTS)!.onEvent('ADDED', deployment({ updated: 1, total: 1, ready: 0 }));
    const err = await timedOut.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotReadyError);
    expect((err as NotReadyError).why).toBe('timeout');
    expect((err as Error).message).toBe('timed out waiting for Deployment/tenant-app: 0 of 1 expected pods are ready');
    expect(w.streams.every((s) => s.stopped)).toBe(true);

    const controller = new AbortController();
    const cancelled = createReadinessWaiter(w.open).waitReady({ namespace: 'tenant-x', objects: [{ kind: 'Deployment', name: 'tenant-app' }], timeoutMs: 5_000, signal: controller.signal });
    controller.abort();
    await expect(cancelled).rejects.toMatchObject({ why: 'cancelled' });
  });

  it('a Deployment deleted while waited for is not ready; nothing to wait for resolves at once', async () => {
    const w = fakeWatch();
    const waiting = createReadinessWaiter(w.open).waitReady({ namespace: 'tenant-x', objects: [{ kind: 'Deployment', name: 'tenant-app' }], timeoutMs: 50 });
    await tick();
    w.live(DEPLOYMENTS)!.onEvent('DELETED', deployment({ updated: 1, total: 1, ready: 1 }));
    await expect(waiting).rejects.toThrow('Deployment/tenant-app: deleted');
    await expect(createReadinessWaiter(w.open).waitReady({ namespace: 'tenant-x', objects: [], timeoutMs: 50 })).resolves.toBeUndefined();
  });
});
