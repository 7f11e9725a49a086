/**
 * The single adapter around @kubernetes/client-node. Everything the provisioner does to the cluster
 * goes through `Kube`: server-side apply with one field manager, create-if-absent, read, delete and
 * list, each with a request timeout and behind a client-side rate limit.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import {
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  ServerConfiguration,
  createConfiguration,
  type KubernetesObject,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import { classifyKubeError } from './errors';
import { FIELD_MANAGER } from './labels';

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface Kube {
  /** Server-side apply; the provisioner's field manager takes ownership of the fields it sets. */
  apply<T extends KubernetesObject>(obj: T): Promise<T>;
  /** Creates the object unless one with that name exists; never overwrites. True when created. */
  createIfAbsent<T extends KubernetesObject>(obj: T): Promise<boolean>;
  read<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined>;
  /**
   * Deletes with foreground propagation; true when the object was there (the garbage collector
   * removes it once its dependents are gone, so a repeat soon after can be true again), false when
   * already gone.
   */
  delete(ref: ObjectRef): Promise<boolean>;
  list<T extends KubernetesObject>(apiVersion: string, kind: string, namespace?: string, labelSelector?: string): Promise<T[]>;
}

export interface KubeOptions {
  fieldManager?: string;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Tries of an idempotent request (apply, read, delete, list) that met a retryable error (default 3). */
  requestAttempts?: number;
  /** Sustained requests per second to the API server, and the burst allowed above it. */
  qps?: number;
  burst?: number;
  /**
   * Called once for every request the adapter sends (each retry counts; the client's cached API
   * discovery does not), with the adapter's verb and the object's kind: for request accounting.
   */
  onRequest?: (verb: KubeVerb, kind: string) => void;
}

/** What the adapter sends: server-side apply, create, read, delete, list. */
export type KubeVerb = 'apply' | 'create' | 'read' | 'delete' | 'list';

const PACKAGE = JSON.parse(readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')) as { version: string };

/**
 * What every request to the API server says it comes from, so the server's audit log can tell the
 * provisioner's requests from Helm's and the controllers' (the library's fetch would say only
 * `node-fetch/1.0`).
 */
export const USER_AGENT = `tenant-provisioner/${PACKAGE.version}`;

/**
 * A kubeconfig whose request options carry the User-Agent: watches (src/k8s/watch.ts) take their
 * headers from here, where the object API takes them from `keepAliveAuth`.
 */
class IdentifiedKubeConfig extends KubeConfig {
  override async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    await super.applyToHTTPSOptions(opts);
    opts.headers = { ...opts.headers, 'User-Agent': USER_AGENT };
  }
}

/** Loads a kubeconfig: the given file, else $KUBECONFIG / ~/.kube/config, else the in-cluster ServiceAccount. */
export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new IdentifiedKubeConfig();
  try {
    if (file) kc.loadFromFile(file);
    else kc.loadFromDefault();
  } catch (err) {
    throw new Error(`cannot load the kubeconfig${file ? ` ${file}` : ''}: ${(err as Error).message}`);
  }
  if (!kc.getCurrentCluster()) {
    throw new Error(
      `no Kubernetes cluster configured${file ? ` in ${file}` : ''}: set KUBECONFIG to a kubeconfig file, or run inside a cluster with a ServiceAccount`,
    );
  }
  return kc;
}

/** A token bucket: at most `burst` requests at once, refilled at `qps` per second. */
export class RateLimiter {
  private tokens: number;
  private last = Date.now();
  private queue: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly qps: number,
    private readonly burst: number,
  ) {
    if (!(qps > 0) || !(burst >= 1)) throw new Error(`rate limit needs qps > 0 and burst >= 1 (got qps=${qps}, burst=${burst})`);
    this.tokens = burst;
  }

  acquire(): Promise<void> {
    return new Promise((resolve) => {
      this.queue.push(resolve);
      this.drain();
    });
  }

  private drain(): void {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    while (this.queue.length > 0 && this.tokens >= 1) {
      this.tokens -= 1;
      this.queue.shift()!();
    }
    if (this.queue.length > 0 && !this.timer) {
      const wait = Math.ceil(((1 - this.tokens) / this.qps) * 1000);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.drain();
      }, wait);
      this.timer.unref();
    }
  }
}

/** How long an idle connection to the API server is kept for the next request. */
const IDLE_CONNECTION_MS = 15_000;

/**
 * The kubeconfig's authentication, over kept-alive connections. The client library gives every
 * request a new https.Agent, so every request paid for a TCP connection and a TLS handshake with
 * the kubeconfig's CA and client certificate. Here the credentials are still applied per request
 * (a rotated token or certificate is picked up), and requests with the same TLS credentials share
 * one keep-alive agent. Every request carries the provisioner's User-Agent.
 */
export function keepAliveAuth(kc: KubeConfig, maxSockets: number) {
  let current: { credentials: string; agent: https.Agent } | undefined;
  return {
    getName: () => 'kubeconfig',
    async applySecurityAuthentication(ctx: RequestContext): Promise<void> {
      await kc.applySecurityAuthentication(ctx);
      ctx.setHeaderParam('User-Agent', USER_AGENT);
      const fresh = ctx.getAgent();
      if (!(fresh instanceof https.Agent)) return; // a proxy or plain-http agent is left as the library made it
      const o = fresh.options;
      const credentials = JSON.stringify([o.ca, o.cert, o.key, o.pfx, o.passphrase, o.rejectUnauthorized, o.servername].map((v) => (Buffer.isBuffer(v) ? v.toString('base64') : v)));
      if (current?.credentials !== credentials) {
        // A new set of credentials (rotation): connections made with the old ones are let go.
        current?.agent.destroy();
        current = { credentials, agent: new https.Agent({ ...o, keepAlive: true, maxSockets, maxFreeSockets: maxSockets, timeout: IDLE_CONNECTION_MS }) };
      }
      ctx.setAgent(current.agent);
    },
  };
}

/** Builds an API client whose every request carries an abort signal after `timeoutMs`. */
export function makeObjectApi(kc: KubeConfig, timeoutMs: number, maxSockets = 50): KubernetesObjectApi {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in the kubeconfig');
  const config = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: keepAliveAuth(kc, maxSockets) },
    promiseMiddleware: [
      {
        pre: (ctx: RequestContext) => {
          ctx.setSignal(AbortSignal.timeout(timeoutMs));
          return Promise.resolve(ctx);
        },
        post: (rsp: ResponseContext) => Promise.resolve(rsp),
      },
    ],
  });
  // Every namespaced object the provisioner touches names its namespace explicitly.
  return new KubernetesObjectApi(config);
}

export function createKube(kc: KubeConfig, options: KubeOptions = {}): Kube {
  const fieldManager = options.fieldManager ?? FIELD_MANAGER;
  const limiter = new RateLimiter(options.qps ?? 20, options.burst ?? 40);
  // As many kept-alive connections as the rate limit lets requests start at once.
  const api = makeObjectApi(kc, options.timeoutMs ?? 15_000, options.burst ?? 40);
  const onRequest = options.onRequest;
  const limited = async <R>(verb: KubeVerb, kind: string, call: () => Promise<R>): Promise<R> => {
    await limiter.acquire();
    onRequest?.(verb, kind);
    return call();
  };
  // A reset connection, a stalled request or a 429/5xx is retried here a few times (each try
  // under the rate limit), so that one lost request does not cost a whole activity attempt.
  // Only for idempotent calls: a create whose answer was lost would come back as AlreadyExists.
  const attempts = Math.max(1, options.requestAttempts ?? 3);
  const retried = async <R>(verb: KubeVerb, kind: string, call: () => Promise<R>): Promise<R> => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await limited(verb, kind, call);
      } catch (err) {
        if (attempt >= attempts || classifyKubeError(err) !== 'retryable') throw err;
        await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 1) * (0.5 + Math.random())));
      }
    }
  };
  const spec = (ref: ObjectRef): KubernetesObject & { metadata: { name: string; namespace?: string } } => ({
    apiVersion: ref.apiVersion,
    kind: ref.kind,
    metadata: { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) },
  });

  return {
    apply: <T extends KubernetesObject>(obj: T) =>
      retried('apply', obj.kind ?? '', () => api.patch<T>(obj, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply)),

    createIfAbsent: (obj) =>
      limited('create', obj.kind ?? '', async () => {
        try {
          await api.create(obj, undefined, undefined, fieldManager);
          return true;
        } catch (err) {
          if (classifyKubeError(err) === 'already-exists') return false;
          throw err;
        }
      }),

    read: <T extends KubernetesObject>(ref: ObjectRef) =>
      retried('read', ref.kind, async () => {
        try {
          return await api.read<T>(spec(ref));
        } catch (err) {
          if (classifyKubeError(err) === 'not-found') return undefined;
          throw err;
        }
      }),

    delete: (ref) =>
      retried('delete', ref.kind, async () => {
        try {
          await api.delete(spec(ref), undefined, undefined, undefined, undefined, 'Foreground');
          return true;
        } catch (err) {
          if (classifyKubeError(err) === 'not-found') return false;
          throw err;
        }
      }),

    list: <T extends KubernetesObject>(apiVersion: string, kind: string, namespace?: string, labelSelector?: string) =>
      retried('list', kind, async () => {
        const res = await api.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, labelSelector);
        return res.items as T[];
      }),
  };
}
