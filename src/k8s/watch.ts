/**
 * Watches of one kind in one namespace. A watch opened without a resourceVersion starts with a
 * synthetic ADDED event for every object that exists, then streams each change: the current state
 * and its changes in one request, with no polling interval in between. Part of the Kubernetes
 * adapter; it streams where `Kube` answers once, so it has its own small interface.
 */
import { Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchStream {
  /** Settles when the server or the network ends the stream: null for a clean end, else the error. */
  ended: Promise<Error | null>;
  stop(): void;
}

export type OpenWatch = (
  path: string,
  query: Record<string, string | number | boolean>,
  onEvent: (type: WatchEventType, obj: KubernetesObject) => void,
) => WatchStream;

/** Opens watches with the kubeconfig's credentials. */
export function watcherFor(kc: KubeConfig): OpenWatch {
  return (path, query, onEvent) => {
    let controller: AbortController | undefined;
    let stopped = false;
    const ended = new Promise<Error | null>((resolve) => {
      new Watch(kc)
        .watch(
          path,
          query,
          (type: string, obj: KubernetesObject) => {
            if (!stopped) onEvent(type as WatchEventType, obj);
          },
          (err: unknown) => resolve(err ? (err instanceof Error ? err : new Error(JSON.stringify(err))) : null),
        )
        .then(
          (c) => {
            controller = c;
            if (stopped) c.abort();
          },
          (err: unknown) => resolve(err instanceof Error ? err : new Error(JSON.stringify(err))),
        );
    });
    return {
      ended,
      stop() {
        stopped = true;
        controller?.abort();
      },
    };
  };
}

/** The collection path of a kind the readiness wait watches, in a namespace. */
export function collectionPath(kind: 'Deployment' | 'Service', namespace: string): string {
  const ns = encodeURIComponent(namespace);
  return kind === 'Deployment' ? `/apis/apps/v1/namespaces/${ns}/deployments` : `/api/v1/namespaces/${ns}/services`;
}
