/**
 * createKube against a local HTTP server that plays the Kubernetes API: discovery, then the object
 * endpoints, with canned answers. Checks what goes over the wire and how answers are mapped.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ApiException, HttpMethod, KubeConfig, RequestContext, type KubernetesObject, type V1Secret } from '@kubernetes/client-node';
import { RateLimiter, createKube, keepAliveAuth, loadKubeConfig, type Kube, type KubeOptions } from '../../src/k8s/client';
import { classifyKubeError } from '../../src/k8s/errors';
import { buildNetworkPolicies } from '../../src/k8s/network-policies';
import { buildLimitRange } from '../../src/k8s/quota';
import { collectionPath, watcherFor } from '../../src/k8s/watch';
import { DEFAULT_PLANS } from '../../src/plans';

const ID = '3f2c1a9e-8b7d-4c6e-9f01-23456789abcd';
const { version } = JSON.parse(readFileSync(path.join(__dirname, '../../package.json'), 'utf8')) as { version: string };
/** What the API server's audit log records as the provisioner's userAgent. */
const USER_AGENT = `tenant-provisioner/${version}`;
const NS = `tenant-${ID}`;

interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface Reply {
  status: number;
  body?: unknown;
  /** Drop the connection without answering (a reset). */
  reset?: boolean;
}

/** Minimal APIResourceLists: what KubernetesObjectApi.resource() fetches to find resource names. */
const DISCOVERY: Record<string, unknown> = {
  '/api/v1': {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: 'v1',
    resources: [
      { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['create', 'delete', 'get', 'list', 'patch'] },
      { name: 'secrets', singularName: 'secret', namespaced: true, kind: 'Secret', verbs: ['create', 'delete', 'get', 'list', 'patch'] },
      { name: 'limitranges', singularName: 'limitrange', namespaced: true, kind: 'LimitRange', verbs: ['create', 'delete', 'get', 'list', 'patch'] },
      { name: 'resourcequotas', singularName: 'resourcequota', namespaced: true, kind: 'ResourceQuota', verbs: ['create', 'delete', 'get', 'list', 'patch'] },
    ],
  },
  '/apis/networking.k8s.io/v1': {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: 'networking.k8s.io/v1',
    resources: [
      { name: 'networkpolicies', singularName: 'networkpolicy', namespaced: true, kind: 'NetworkPolicy', verbs: ['create', 'delete', 'get', 'list', 'patch'] },
    ],
  },
};

function statusBody(code: number, reason: string, message: string): unknown {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: code < 400 ? 'Success' : 'Failure', reason, message, code };
}

let server: http.Server;
let silentServer: http.Server;
let baseUrl = '';
let silentUrl = '';
/** Every non-discovery request the fake API server received, in order. */
let requests: Recorded[] = [];
/** Decides the answer to a non-discovery request; `undefined` = never answer. */
let route: (req: Recorded) => Reply | undefined = () => ({ status: 500, body: statusBody(500, 'InternalError', 'no route') });

function send(res: http.ServerResponse, reply: Reply): void {
  res.writeHead(reply.status, { 'Content-Type': 'application/json' });
  res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
}

function listen(s: http.Server): Promise<string> {
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
}

function close(s: http.Server | undefined): Promise<void> {
  if (!s) return Promise.resolve();
  s.closeAllConnections();
  return new Promise((resolve) => s.close(() => resolve()));
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const discovery = req.method === 'GET' ? DISCOVERY[url.pathname] : undefined;
      if (discovery) return send(res, { status: 200, body: discovery });
      const recorded: Recorded = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      const reply = route(recorded);
      if (reply?.reset) req.socket.destroy();
      else if (reply) send(res, reply);
      // else: hold the request open forever (closed in afterAll)
    });
  });
  // Accepts connections and never answers anything, not even discovery.
  silentServer = http.createServer(() => undefined);
  baseUrl = await listen(server);
  silentUrl = await listen(silentServer);
});

afterAll(async () => {
  await Promise.all([close(server), close(silentServer)]);
});

beforeEach(() => {
  requests = [];
});

function kubeConfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

function kube(options: KubeOptions = {}, url = baseUrl): Kube {
  return createKube(kubeConfig(url), { timeoutMs: 5_000, ...options });
}

function secret(name: string): V1Secret {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: NS }, type: 'Opaque', stringData: { KEY: 'value' } };
}

const echo = (req: Recorded): Reply => ({ status: req.method === 'POST' ? 201 : 200, body: JSON.parse(req.body) as unknown });

describe('apply', () => {
  it('sends a server-side apply PATCH with the field manager, force and the object', async () => {
    route = echo;
    const obj = secret('tenant-credentials');
    const applied = await kube().apply(obj);

    expect(requests).toHaveLength(1);
    const [req] = requests;
    expect(req!.method).toBe('PATCH');
    expect(req!.path).toBe(`/api/v1/namespaces/${NS}/secrets/tenant-credentials`);
    expect(req!.headers['content-type']).toBe('application/apply-patch+yaml');
    expect(req!.query.get('fieldManager')).toBe('tenant-provisioner');
    expect(req!.query.get('force')).toBe('true');
    expect([...req!.query.keys()].sort()).toEqual(['fieldManager', 'force']);
    expect(req!.headers.authorization).toBe('Bearer t');
    expect(JSON.parse(req!.body)).toStrictEqual(obj);
    expect(applied.metadata?.name).toBe('tenant-credentials');
  });

  it('uses the configured field manager', async () => {
    route = echo;
    await kube({ fieldManager: 'someone-else' }).apply(secret('s'));
    expect(requests[0]!.query.get('fieldManager')).toBe('someone-else');
  });

  it('serializes NetworkPolicy `_from` as "from"', async () => {
    route = echo;
    const policy = buildNetworkPolicies({ namespace: NS, tenantId: ID, plan: 'pro', ingressNamespace: 'ingress-nginx' }).find(
      (p) => p.metadata?.name === 'allow-from-ingress-controller',
    )!;
    await kube().apply(policy);

    const [req] = requests;
    expect(req!.path).toBe(`/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies/allow-from-ingress-controller`);
    expect(req!.body).not.toContain('_from');
    const body = JSON.parse(req!.body) as { spec: { ingress: Array<Record<string, unknown>> } };
    expect(body.spec.ingress[0]).toStrictEqual({
      from: [
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } },
          podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ingress-nginx' } },
        },
      ],
      ports: [{ protocol: 'TCP', port: 8080 }],
    });
  });

  it('serializes LimitRange `_default` as "default"', async () => {
    route = echo;
    const plan = DEFAULT_PLANS[0]!;
    await kube().apply(buildLimitRange({ namespace: NS, tenantId: ID, plan }));

    const [req] = requests;
    expect(req!.path).toBe(`/api/v1/namespaces/${NS}/limitranges/tenant-limits`);
    expect(req!.body).not.toContain('_default');
    const body = JSON.parse(req!.body) as { spec: { limits: Array<Record<string, unknown>> } };
    expect(body.spec.limits[0]).toMatchObject({
      type: 'Container',
      default: { cpu: plan.limitRange.defaultLimitCpu, memory: plan.limitRange.defaultLimitMemory },
      defaultRequest: { cpu: plan.limitRange.defaultRequestCpu, memory: plan.limitRange.defaultRequestMemory },
    });
  });
});

describe('User-Agent', () => {
  it('is the provisioner and its version on every request of the adapter', async () => {
    route = (req) => (req.method === 'GET' ? { status: 404, body: statusBody(404, 'NotFound', 'not found') } : echo(req));
    const k = kube();
    await k.apply(secret('a'));
    await k.createIfAbsent(secret('b'));
    await k.read({ apiVersion: 'v1', kind: 'Secret', name: 'c', namespace: NS });
    expect(requests.map((r) => [r.method, r.headers['user-agent']])).toEqual([
      ['PATCH', USER_AGENT],
      ['POST', USER_AGENT],
      ['GET', USER_AGENT],
    ]);
  });

  it('is on the watches opened with a kubeconfig from loadKubeConfig, too', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kubeconfig-'));
    try {
      const file = path.join(dir, 'config');
      writeFileSync(file, JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: baseUrl, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }));
      route = () => ({ status: 200, body: '' });
      const watch = watcherFor(loadKubeConfig(file))(collectionPath('Service', NS), {}, () => undefined);
      await expect(watch.ended).resolves.toBeNull();
      expect(requests).toHaveLength(1);
      expect(requests[0]!.query.get('watch')).toBe('true');
      expect(requests[0]!.headers['user-agent']).toBe(USER_AGENT);
      expect(requests[0]!.headers.authorization).toBe('Bearer t');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('request retries', () => {
  it('retries an idempotent request whose connection was reset, and succeeds', async () => {
    let n = 0;
    route = (req) => (n++ === 0 ? { status: 0, reset: true } : echo(req));
    const applied = await kube().apply(secret('flaky'));
    expect(applied.metadata?.name).toBe('flaky');
    expect(requests.map((r) => r.method)).toEqual(['PATCH', 'PATCH']);
  });

  it('gives up after the configured tries, and does not retry a final error', async () => {
    route = () => ({ status: 503, body: statusBody(503, 'ServiceUnavailable', 'overloaded') });
    await expect(kube({ requestAttempts: 2 }).read({ apiVersion: 'v1', kind: 'Secret', name: 'x', namespace: NS })).rejects.toMatchObject({ code: 503 });
    expect(requests).toHaveLength(2);
    requests = [];
    route = () => ({ status: 422, body: statusBody(422, 'Invalid', 'bad') });
    await expect(kube().apply(secret('bad'))).rejects.toMatchObject({ code: 422 });
    expect(requests).toHaveLength(1);
  });

  it('never retries a create (a lost answer would come back as AlreadyExists)', async () => {
    route = () => ({ status: 0, reset: true });
    await expect(kube().createIfAbsent(secret('once'))).rejects.toBeDefined();
    expect(requests).toHaveLength(1);
  });
});

describe('request accounting', () => {
  it('reports every request sent, retries included, with its verb and kind', async () => {
    const seen: string[] = [];
    let resets = 1;
    route = (req) => {
      if (req.method === 'PATCH' && resets-- > 0) return { status: 0, reset: true };
      if (req.method === 'GET' && req.path.endsWith('/gone')) return { status: 404, body: statusBody(404, 'NotFound', 'gone') };
      if (req.method === 'GET' && req.path.endsWith('/secrets')) return { status: 200, body: { kind: 'SecretList', apiVersion: 'v1', metadata: {}, items: [] } };
      if (req.method === 'POST') return { status: 409, body: statusBody(409, 'AlreadyExists', 'exists') };
      if (req.method === 'DELETE') return { status: 200, body: statusBody(200, '', 'deleted') };
      return echo(req);
    };
    const k = kube({ onRequest: (verb, kind) => seen.push(`${verb} ${kind}`) });
    await k.apply(secret('counted'));
    await k.createIfAbsent(secret('counted'));
    await k.read({ apiVersion: 'v1', kind: 'Secret', name: 'gone', namespace: NS });
    await k.delete({ apiVersion: 'v1', kind: 'Secret', name: 'gone', namespace: NS });
    await k.list('v1', 'Secret', NS);
    expect(seen).toEqual(['apply Secret', 'apply Secret', 'create Secret', 'read Secret', 'delete Secret', 'list Secret']);
    // Discovery (answered above without being recorded) is cached by the client and not counted.
    expect(seen).toHaveLength(requests.length);
  });
});

describe('createIfAbsent', () => {
  it('POSTs the object with the field manager and returns true on 201', async () => {
    route = echo;
    await expect(kube().createIfAbsent(secret('new'))).resolves.toBe(true);
    const [req] = requests;
    expect(req!.method).toBe('POST');
    expect(req!.path).toBe(`/api/v1/namespaces/${NS}/secrets`);
    expect(req!.query.get('fieldManager')).toBe('tenant-provisioner');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(req!.body)).toStrictEqual(secret('new'));
  });

  it('returns false on 409 AlreadyExists', async () => {
    route = () => ({ status: 409, body: statusBody(409, 'AlreadyExists', 'secrets "old" already exists') });
    await expect(kube().createIfAbsent(secret('old'))).resolves.toBe(false);
    expect(requests).toHaveLength(1);
  });

  it('rethrows a 409 with another reason', async () => {
    route = () => ({ status: 409, body: statusBody(409, 'Conflict', 'Operation cannot be fulfilled') });
    const err = await kube().createIfAbsent(secret('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    expect(err).toMatchObject({ code: 409 });
    expect(classifyKubeError(err)).toBe('conflict');
  });
});

describe('read', () => {
  it('GETs the object by name and returns it', async () => {
    route = () => ({ status: 200, body: secret('found') });
    const found = await kube().read<V1Secret>({ apiVersion: 'v1', kind: 'Secret', name: 'found', namespace: NS });
    expect(found?.metadata?.name).toBe('found');
    expect(requests[0]).toMatchObject({ method: 'GET', path: `/api/v1/namespaces/${NS}/secrets/found` });
  });

  it('returns undefined on 404', async () => {
    route = () => ({ status: 404, body: statusBody(404, 'NotFound', 'secrets "gone" not found') });
    await expect(kube().read({ apiVersion: 'v1', kind: 'Secret', name: 'gone', namespace: NS })).resolves.toBeUndefined();
  });

  it('rethrows 500', async () => {
    route = () => ({ status: 500, body: statusBody(500, 'InternalError', 'etcd is down') });
    const err = await kube()
      .read({ apiVersion: 'v1', kind: 'Secret', name: 'x', namespace: NS })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    expect(err).toMatchObject({ code: 500 });
    expect(classifyKubeError(err)).toBe('retryable');
  });
});

describe('delete', () => {
  it('DELETEs with propagationPolicy=Foreground and returns true on 200', async () => {
    route = () => ({ status: 200, body: statusBody(200, '', 'deleted') });
    await expect(kube().delete({ apiVersion: 'v1', kind: 'Namespace', name: NS })).resolves.toBe(true);
    const [req] = requests;
    expect(req!.method).toBe('DELETE');
    expect(req!.path).toBe(`/api/v1/namespaces/${NS}`);
    expect(req!.query.get('propagationPolicy')).toBe('Foreground');
  });

  it('returns false on 404', async () => {
    route = () => ({ status: 404, body: statusBody(404, 'NotFound', 'not found') });
    await expect(kube().delete({ apiVersion: 'v1', kind: 'Secret', name: 'gone', namespace: NS })).resolves.toBe(false);
    expect(requests[0]!.query.get('propagationPolicy')).toBe('Foreground');
  });

  it('rethrows 403', async () => {
    route = () => ({ status: 403, body: statusBody(403, 'Forbidden', 'cannot delete') });
    const err = await kube()
      .delete({ apiVersion: 'v1', kind: 'Secret', name: 'x', namespace: NS })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 403 });
  });
});

describe('list', () => {
  it('passes labelSelector and returns the items', async () => {
    route = () => ({ status: 200, body: { apiVersion: 'v1', kind: 'SecretList', metadata: {}, items: [secret('a'), secret('b')] } });
    const items = await kube().list<V1Secret>('v1', 'Secret', NS, 'tenancy.dev/tenant-id=abc');
    expect(items.map((s) => s.metadata?.name)).toEqual(['a', 'b']);
    const [req] = requests;
    expect(req!.method).toBe('GET');
    expect(req!.path).toBe(`/api/v1/namespaces/${NS}/secrets`);
    expect(req!.query.get('labelSelector')).toBe('tenancy.dev/tenant-id=abc');
  });

  it('lists cluster-scoped kinds without a namespace', async () => {
    route = () => ({ status: 200, body: { apiVersion: 'v1', kind: 'NamespaceList', metadata: {}, items: [] } });
    await expect(kube().list<KubernetesObject>('v1', 'Namespace', undefined, 'app.kubernetes.io/managed-by=tenant-provisioner')).resolves.toEqual([]);
    expect(requests[0]!.path).toBe('/api/v1/namespaces');
    expect(requests[0]!.query.get('labelSelector')).toBe('app.kubernetes.io/managed-by=tenant-provisioner');
  });
});

describe('request timeout', () => {
  it('rejects a request the server never answers within timeoutMs, as retryable', async () => {
    route = () => undefined;
    const started = performance.now();
    const err = await kube({ timeoutMs: 300, requestAttempts: 1 })
      .read({ apiVersion: 'v1', kind: 'Secret', name: 'hang', namespace: NS })
      .catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(err).toBeInstanceOf(Error);
    expect(requests).toHaveLength(1); // it did reach the server
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(5_000);
    expect(classifyKubeError(err)).toBe('retryable');
  }, 10_000);

  it('also bounds discovery against a server that answers nothing', async () => {
    const started = performance.now();
    const err = await kube({ timeoutMs: 300 }, silentUrl)
      .apply(secret('x'))
      .catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain('Failed to fetch resource metadata');
    expect(classifyKubeError(err)).toBe('retryable');
  }, 10_000);
});

describe('RateLimiter', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('rejects a nonsensical configuration', () => {
    expect(() => new RateLimiter(0, 1)).toThrow(/qps > 0/);
    expect(() => new RateLimiter(10, 0)).toThrow(/burst >= 1/);
  });

  it('with qps 10 and burst 2 lets 2 calls through at once and spaces the rest 100 ms apart', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const limiter = new RateLimiter(10, 2);
    const released: number[] = [];
    const all = [0, 1, 2, 3, 4].map((i) => limiter.acquire().then(() => released.push(i)));

    await jest.advanceTimersByTimeAsync(0);
    expect(released).toEqual([0, 1]);
    await jest.advanceTimersByTimeAsync(99);
    expect(released).toEqual([0, 1]);
    await jest.advanceTimersByTimeAsync(1);
    expect(released).toEqual([0, 1, 2]);
    await jest.advanceTimersByTimeAsync(100);
    expect(released).toEqual([0, 1, 2, 3]);
    await jest.advanceTimersByTimeAsync(100);
    expect(released).toEqual([0, 1, 2, 3, 4]);
    await Promise.all(all);

    // Idle time refills the bucket, but never above the burst.
    await jest.advanceTimersByTimeAsync(10_000);
    const later: number[] = [];
    const more = [0, 1, 2].map((i) => limiter.acquire().then(() => later.push(i)));
    await jest.advanceTimersByTimeAsync(0);
    expect(later).toEqual([0, 1]);
    await jest.advanceTimersByTimeAsync(100);
    expect(later).toEqual([0, 1, 2]);
    await Promise.all(more);
  });

  it('gates the requests createKube sends (qps 10, burst 2)', async () => {
    // Fake clock for the limiter; real I/O (nextTick/setImmediate stay real) for the HTTP exchange.
    jest.useFakeTimers({ now: 1_000_000, doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'queueMicrotask', 'performance', 'hrtime'] });
    route = (req) => ({ status: 200, body: secret(req.path.split('/').pop()!) });
    const k = kube({ qps: 10, burst: 2, timeoutMs: 10_000 });
    const names = ['r0', 'r1', 'r2', 'r3', 'r4'];
    const calls = Promise.all(names.map((name) => k.read<V1Secret>({ apiVersion: 'v1', kind: 'Secret', name, namespace: NS })));

    /** Lets real I/O run (without advancing the fake clock) until `count` requests arrived, then a little longer. */
    async function settle(count: number): Promise<void> {
      const deadline = performance.now() + 5_000;
      while (requests.length < count && performance.now() < deadline) await new Promise((r) => setImmediate(r));
      const quiet = performance.now() + 100;
      while (performance.now() < quiet) await new Promise((r) => setImmediate(r));
    }

    const arrived = () => requests.map((r) => r.path.split('/').pop());
    await settle(2);
    // r0 and r1 both wait for discovery, so either may arrive first.
    expect(arrived().sort()).toEqual(['r0', 'r1']);
    for (const n of [3, 4, 5]) {
      await jest.advanceTimersByTimeAsync(100);
      await settle(n);
      expect(requests).toHaveLength(n);
    }
    expect(arrived().slice(2)).toEqual(['r2', 'r3', 'r4']);
    const results = await calls;
    expect(results.map((s) => s?.metadata?.name)).toEqual(names);
  });
});

describe('keepAliveAuth', () => {
  /** A kubeconfig stand-in that, like the library, makes a new agent per request. */
  function rotatingConfig() {
    const state = { ca: 'ca-1', token: 'token-1', made: 0 };
    const kc = {
      applySecurityAuthentication(ctx: RequestContext) {
        state.made += 1;
        ctx.setHeaderParam('Authorization', `Bearer ${state.token}`);
        ctx.setAgent(new https.Agent({ ca: state.ca }));
        return Promise.resolve();
      },
    };
    return { kc: kc as unknown as KubeConfig, state };
  }
  const request = () => new RequestContext('https://127.0.0.1:6443/api/v1/namespaces', HttpMethod.GET);

  it('shares one keep-alive agent across requests with the same TLS credentials, and applies the headers every time', async () => {
    const { kc, state } = rotatingConfig();
    const auth = keepAliveAuth(kc, 7);
    const first = request();
    const second = request();
    await auth.applySecurityAuthentication(first);
    state.token = 'token-2';
    await auth.applySecurityAuthentication(second);
    const agent = first.getAgent() as https.Agent;
    expect(second.getAgent()).toBe(agent);
    expect(agent).toBeInstanceOf(https.Agent);
    expect(agent.options).toMatchObject({ keepAlive: true, ca: 'ca-1' });
    expect(agent.maxSockets).toBe(7);
    expect(first.getHeaders().Authorization).toBe('Bearer token-1');
    expect(second.getHeaders().Authorization).toBe('Bearer token-2');
    expect([first, second].map((r) => r.getHeaders()['User-Agent'])).toEqual([USER_AGENT, USER_AGENT]);
    expect(state.made).toBe(2);
  });

  it('moves to a new agent when the certificates change, and lets the old connections go', async () => {
    const { kc, state } = rotatingConfig();
    const auth = keepAliveAuth(kc, 5);
    const before = request();
    await auth.applySecurityAuthentication(before);
    const old = before.getAgent() as https.Agent;
    const destroyed = jest.spyOn(old, 'destroy');
    state.ca = 'ca-2';
    const after = request();
    await auth.applySecurityAuthentication(after);
    expect(after.getAgent()).not.toBe(old);
    expect((after.getAgent() as https.Agent).options).toMatchObject({ keepAlive: true, ca: 'ca-2' });
    expect(destroyed).toHaveBeenCalled();
  });
});
