/**
 * Runs the real API (src/api) on port 0 against the real stack, next to a real worker on a unique
 * task queue, and talks to it over HTTP the way Stripe, users and the internal service do.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { V1Deployment, V1Namespace } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { createActivities } from '../../src/activities';
import { createAdminApp, createApp } from '../../src/api/app';
import { loadApiConfig } from '../../src/api/config';
import { createApiRuntime, createHttpServer, type ApiRuntime } from '../../src/api/server';
import { buildTestEvent, devJwt, signPayload, type TestEventInput } from '../../src/cli/send-test-event';
import { deprovisionSignal, tenantWorkflowId } from '../../src/contract';
import type { Db } from '../../src/db/client';
import type { Kube } from '../../src/k8s/client';
import { env, eventually, realDeps, uniqueTaskQueue, withWorker } from './helpers';
import type { TenantView } from '../../src/api/tenants';
import { loadPlanCatalogue } from '../../src/plans';

export const workflowsPath = require.resolve('../../src/workflows');

export const WEBHOOK_SECRET = `whsec_test_${randomBytes(16).toString('hex')}`;
export const JWT = { secret: randomBytes(32).toString('hex'), issuer: 'https://auth.example.test', audience: 'tenant-provisioner-test' };
export const SERVICE_TOKEN = randomBytes(32).toString('base64url');

export const newCustomer = (): string => `cus_test_${randomBytes(8).toString('hex')}`;

/**
 * stripe-mock answers every subscription read with Stripe's fixture subscription (the id it was
 * asked for, the fixture's customer and price), so events whose subscription is read from the API
 * belong to that customer, and the test catalogue maps the fixture's price to a plan.
 */
const stripeFixtures = JSON.parse(readFileSync(path.resolve(__dirname, '../fixtures/stripe/objects.json'), 'utf8')) as {
  subscription: { customer: string; items: { data: Array<{ price: { id: string } }> } };
};
export const FIXTURE_CUSTOMER = stripeFixtures.subscription.customer;
export const FIXTURE_PRICE = stripeFixtures.subscription.items.data[0]!.price.id;
export const FIXTURE_PRICE_PLAN = 'starter';

/** The default catalogue, with Stripe selectors: lookup keys named like the plans, the fixture price → starter. */
export const TEST_PLANS_JSON = JSON.stringify(
  loadPlanCatalogue()
    .ids()
    .map((id) => {
      const plan = loadPlanCatalogue().get(id);
      return { ...plan, stripe: { ...plan.stripe, lookupKeys: [id], ...(id === FIXTURE_PRICE_PLAN ? { priceIds: [FIXTURE_PRICE] } : {}) } };
    }),
);
export const newSubscription = (): string => `sub_test_${randomBytes(8).toString('hex')}`;

export interface RunningApi {
  url: string;
  /** The internal admin port: /metrics and the operator endpoints. */
  adminUrl: string;
  runtime: ApiRuntime;
  server: http.Server;
  close(): Promise<void>;
}

export interface StartApiOptions {
  taskQueue: string;
  databaseUrl?: string;
  temporalAddress?: string;
  /** The Stripe API's base URL (default: the stack's stripe-mock). */
  stripeApiBase?: string;
  /** Start the outbox dispatcher (default true), as the API process does. */
  dispatcher?: boolean;
  env?: Record<string, string>;
}

export async function startApi(options: StartApiOptions): Promise<RunningApi> {
  const config = loadApiConfig({
    DATABASE_URL: options.databaseUrl ?? env('DATABASE_URL'),
    TEMPORAL_ADDRESS: options.temporalAddress ?? env('TEMPORAL_ADDRESS'),
    TEMPORAL_NAMESPACE: process.env.TEMPORAL_NAMESPACE ?? 'default',
    TASK_QUEUE: options.taskQueue,
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    JWT_SECRET: JWT.secret,
    JWT_ISSUER: JWT.issuer,
    JWT_AUDIENCE: JWT.audience,
    SERVICE_TOKEN,
    HOST: '127.0.0.1',
    PORT: '0',
    DEPROVISION_GRACE_SECONDS: '0',
    LOG_LEVEL: process.env.API_TEST_LOG_LEVEL ?? 'silent',
    STRIPE_API_KEY: 'sk_test_123',
    STRIPE_API_BASE: options.stripeApiBase ?? env('STRIPE_MOCK_URL'),
    STRIPE_TIMEOUT_MS: '2000',
    STRIPE_MAX_RETRIES: '0',
    PLANS_JSON: TEST_PLANS_JSON,
    OUTBOX_POLL_MS: '200',
    OUTBOX_MAX_BACKOFF_MS: '2000',
    ...options.env,
  });
  const runtime = createApiRuntime(config);
  if (options.dispatcher !== false) runtime.dispatcher.start();
  const server = createHttpServer(createApp(runtime.deps));
  const admin = createHttpServer(createAdminApp(runtime.deps));
  server.listen(0, '127.0.0.1');
  admin.listen(0, '127.0.0.1');
  await Promise.all([once(server, 'listening'), once(admin, 'listening')]);
  const { port } = server.address() as AddressInfo;
  const adminPort = (admin.address() as AddressInfo).port;
  const close = (s: http.Server) => {
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    s.closeAllConnections();
    return closed;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    runtime,
    server,
    async close() {
      await Promise.all([close(server), close(admin)]);
      await runtime.close();
    },
  };
}

export interface HttpAnswer<T = Record<string, unknown>> {
  status: number;
  contentType: string;
  headers: Headers;
  body: T;
}

async function answer<T>(res: Response): Promise<HttpAnswer<T>> {
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', headers: res.headers, body: body as T };
}

/** POSTs an event to the webhook, signed like Stripe does (or with the overrides a test needs). */
export async function postEvent(
  api: { url: string },
  event: Record<string, unknown> | string,
  options: { secret?: string; timestamp?: number; signature?: string | null; contentType?: string } = {},
): Promise<HttpAnswer> {
  const payload = typeof event === 'string' ? event : JSON.stringify(event);
  const headers: Record<string, string> = { 'Content-Type': options.contentType ?? 'application/json; charset=utf-8' };
  const signature = options.signature === undefined ? signPayload(payload, options.secret ?? WEBHOOK_SECRET, options.timestamp) : options.signature;
  if (signature !== null) headers['Stripe-Signature'] = signature;
  return answer(await fetch(`${api.url}/webhooks/stripe`, { method: 'POST', headers, body: payload, signal: AbortSignal.timeout(30_000) }));
}

export function event(input: TestEventInput): Record<string, unknown> {
  return buildTestEvent(input);
}

export async function get<T = Record<string, unknown>>(api: { url: string }, path: string, token?: string): Promise<HttpAnswer<T>> {
  return answer<T>(await fetch(`${api.url}${path}`, { headers: token ? { Authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(30_000) }));
}

export async function post<T = Record<string, unknown>>(
  api: { url: string },
  path: string,
  body: unknown,
  options: { token?: string; idempotencyKey?: string; contentType?: string } = {},
): Promise<HttpAnswer<T>> {
  const headers: Record<string, string> = { 'Content-Type': options.contentType ?? 'application/json' };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  if (options.idempotencyKey) headers['Idempotency-Key'] = options.idempotencyKey;
  return answer<T>(await fetch(`${api.url}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body), signal: AbortSignal.timeout(30_000) }));
}

export function userToken(userId: string, overrides: Partial<{ secret: string; issuer: string; audience: string; ttlSeconds: number }> = {}): Promise<string> {
  return devJwt({ userId, ...JWT, ...overrides });
}

/** A tenant as the status endpoints answer it (the API's own type, as JSON). */
export type TenantViewBody = TenantView;

export interface StatusBody {
  userId: string;
  tenants: TenantViewBody[];
}

/** Waits until the user's status endpoint shows the tenant in `status`. */
export async function waitForApiStatus(api: { url: string }, token: string, tenantId: string, status: string, timeoutMs = 180_000): Promise<TenantViewBody> {
  return eventually(async () => {
    const res = await get<StatusBody>(api, '/api/tenants/status', token);
    const t = res.status === 200 ? res.body.tenants.find((x) => x.tenantId === tenantId) : undefined;
    return t?.status === status ? t : undefined;
  }, timeoutMs, `tenant ${tenantId} ${status} through GET /api/tenants/status`);
}

export async function waitForRowStatus(db: Db, tenantId: string, status: string, timeoutMs = 180_000): Promise<void> {
  await eventually(async () => (await db.tenant.findUnique({ where: { id: tenantId } }))?.status === status, timeoutMs, `tenant ${tenantId} row ${status}`);
}

export async function counts(db: Db): Promise<{ stripeEvents: number; users: number; tenants: number; subscriptions: number }> {
  const [stripeEvents, users, tenants, subscriptions] = await Promise.all([db.stripeEvent.count(), db.user.count(), db.tenant.count(), db.subscription.count()]);
  return { stripeEvents, users, tenants, subscriptions };
}

export const namespaceOf = (tenantId: string) => `tenant-${tenantId}`;

export async function readNamespace(kube: Kube, tenantId: string): Promise<V1Namespace | undefined> {
  return kube.read<V1Namespace & { apiVersion: string; kind: string }>({ apiVersion: 'v1', kind: 'Namespace', name: namespaceOf(tenantId) });
}

export async function appDeployment(kube: Kube, tenantId: string): Promise<V1Deployment | undefined> {
  const list = await kube.list<V1Deployment & { apiVersion: string; kind: string }>('apps/v1', 'Deployment', namespaceOf(tenantId));
  return list[0];
}

export async function waitForNamespaceGone(kube: Kube, tenantId: string, timeoutMs = 180_000): Promise<void> {
  await eventually(async () => (await readNamespace(kube, tenantId)) === undefined, timeoutMs, `namespace of ${tenantId} gone`);
}

/** Runs of the tenant's workflow id known to Temporal's visibility store. */
export async function workflowRuns(client: Client, tenantId: string): Promise<number> {
  let n = 0;
  for await (const _ of client.workflow.list({ query: `WorkflowId = '${tenantWorkflowId(tenantId)}'` })) n += 1;
  return n;
}

/**
 * Best-effort cleanup: deprovisions every tracked tenant whose workflow still runs, and waits for
 * it to finish (the worker must still be running). Tests assert their own teardown; this catches
 * what a failing test left behind.
 */
export async function deprovisionLeftovers(client: Client, tenantIds: Iterable<string>, timeoutMs = 180_000): Promise<void> {
  await Promise.all(
    [...tenantIds].map(async (tenantId) => {
      const handle = client.workflow.getHandle(tenantWorkflowId(tenantId));
      try {
        const desc = await handle.describe();
        if (desc.status.name !== 'RUNNING') return;
        await handle.signal(deprovisionSignal, { reason: 'test cleanup', graceSeconds: 0 });
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([handle.result().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
        clearTimeout(timer);
      } catch {
        // never started, or already gone
      }
    }),
  );
}

export interface StackContext {
  api: RunningApi;
  taskQueue: string;
  /** Tenants this test created; deprovisioned at the end if still running. */
  track(tenantId: string): string;
}

/**
 * A real worker (real activities: PostgreSQL, Kubernetes, Helm) on a unique task queue, and the API
 * configured with that task queue; `fn` runs while both are up, then leftovers are deprovisioned.
 */
export async function withApiStack<T>(
  options: { prefix: string; db: Db; client: Client; maxConcurrentActivityTaskExecutions?: number; api?: Omit<StartApiOptions, 'taskQueue'> },
  fn: (ctx: StackContext) => Promise<T>,
): Promise<T> {
  const taskQueue = uniqueTaskQueue(options.prefix);
  const tenants = new Set<string>();
  return withWorker(
    {
      taskQueue,
      workflowsPath,
      activities: createActivities(realDeps(options.db)),
      maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions ?? 10,
    },
    async () => {
      const api = await startApi({ taskQueue, ...options.api });
      try {
        return await fn({
          api,
          taskQueue,
          track: (id) => {
            tenants.add(id);
            return id;
          },
        });
      } finally {
        await deprovisionLeftovers(options.client, tenants);
        await api.close();
      }
    },
  );
}
