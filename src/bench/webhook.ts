/**
 * Webhook acknowledgement benchmark: how fast the API answers Stripe at a steady rate, with and
 * without new signups provisioning at the same time, measured side by side in one run.
 *
 * Starts the API and a worker as their own processes (as deployed), on a throw-away database with
 * `--existing` live subscriptions already recorded, then sends signed events at `--rate` per
 * second for `--seconds`, open loop (a slow answer does not slow the sender):
 *   phase 1, steady: renewals of existing subscriptions (`invoice.paid`, read from stripe-mock, and
 *            `customer.subscription.updated`), which change nothing;
 *   phase 2, signups: the same, with `--signup-percent` of the events new subscriptions whose
 *            tenants the worker provisions (namespace, policies, quota, Helm) during the phase.
 * Prints p50/p95/p99/max of the acknowledgement time per phase and their ratio (as the sender saw
 * it, and as the API timed it: the sender shares the machine's CPU), the API's CPU per event, then deprovisions
 * the new tenants and checks that nothing is left. Figures, not pass/fail.
 *
 *   npm run bench:webhook -- --rate 200 --seconds 20 --signup-percent 1
 *
 * Needs the local stack (source .stack/env: DATABASE_URL, TEMPORAL_ADDRESS, KUBECONFIG,
 * STRIPE_MOCK_URL) and a build (dist/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { V1Namespace } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { tenantIdForSubscription, userIdForCustomer } from '../api/ids';
import { buildTestEvent, signPayload } from '../cli/send-test-event';
import { tenantWorkflowId } from '../contract';
import { createDb } from '../db/client';
import { dropDatabase, ensureDatabase, migrate } from '../db/migrate';
import { createKube, loadKubeConfig } from '../k8s/client';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../k8s/labels';
import { loadPlanCatalogue } from '../plans';
import { percentile } from './stats';

const ROOT = path.resolve(__dirname, '../..');

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: source .stack/env (npm run stack:up) first`);
  return v;
}

/** CPU seconds (user + system) a process has used so far, from /proc; undefined off Linux. */
function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** The API's own histogram of webhook answer times: cumulative counts per bucket bound (seconds). */
async function serverBuckets(adminUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const buckets = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('tenant_provisioner_http_request_duration_seconds_bucket{') || !line.includes('route="/webhooks/stripe"')) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (le) buckets.set(le, (buckets.get(le) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return buckets;
}

/** Share of the phase's answers the API itself timed within 25 and 50 ms (bucket bounds). */
function serverShare(before: Map<string, number>, after: Map<string, number>): string {
  const delta = (le: string) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
  const total = delta('+Inf');
  if (total === 0) return 'no answers';
  const pct = (le: string) => `${((100 * delta(le)) / total).toFixed(1)}%`;
  return `${pct('0.025')} <= 25 ms, ${pct('0.05')} <= 50 ms`;
}

interface PhaseResult {
  name: string;
  sent: number;
  /** The same answers timed by the API (request in to response finished), as bucket shares. */
  server?: string;
  /** The API process's CPU time over the phase, per event sent. */
  apiCpuMsPerEvent?: number;
  latencies: number[];
  errors: Map<string, number>;
  signups: string[];
}

function report(r: PhaseResult): { p50: number; p99: number } {
  const s = [...r.latencies].sort((a, b) => a - b);
  const f = (ms: number) => `${ms.toFixed(1)}ms`;
  const p50 = percentile(s, 50);
  const p99 = percentile(s, 99);
  const errors = [...r.errors].map(([k, v]) => `${k}×${v}`).join(', ') || 'none';
  const cpu = r.apiCpuMsPerEvent === undefined ? '' : `  API CPU ${r.apiCpuMsPerEvent.toFixed(2)} ms/event`;
  console.log(`${r.name.padEnd(28)} sent=${r.sent} ok=${s.length}  p50=${f(p50)}  p95=${f(percentile(s, 95))}  p99=${f(p99)}  max=${f(s[s.length - 1] ?? NaN)}${cpu}  errors: ${errors}  new tenants: ${r.signups.length}`);
  if (r.server) console.log(`${''.padEnd(28)} timed by the API itself: ${r.server}`);
  return { p50, p99 };
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function startProcess(name: string, script: string, env: NodeJS.ProcessEnv, nodeArgs: string[] = [], nice = 0): ChildProcess {
  const args = [...nodeArgs, path.join(ROOT, 'dist', script)];
  const child = nice
    ? spawn('nice', ['-n', String(nice), process.execPath, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  child.stderr.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-2000)));
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM') console.error(`${name} exited (${code ?? signal}):\n${tail}`);
  });
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await once(child, 'exit');
  clearTimeout(timer);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '200' },
      seconds: { type: 'string', default: '20' },
      'signup-percent': { type: 'string', default: '1' },
      existing: { type: 'string', default: '200' },
      port: { type: 'string', default: '18080' },
      // Without a worker nothing is provisioned: isolates the API's own cost from the CPU that
      // Kubernetes writes and Helm take on the same machine.
      'no-worker': { type: 'boolean', default: false },
      // Writes the API process's V8 CPU profile (.cpuprofile) into this directory when it stops.
      'api-cpu-prof': { type: 'string' },
      // Runs the worker (and the helm processes it starts) at this niceness, as if on other nodes
      // than the API: a deployment never puts Helm's CPU on the API's cores.
      'worker-nice': { type: 'string', default: '0' },
    },
  });
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const signupPercent = Number(values['signup-percent']);
  const existing = Number(values.existing);
  if (!(rate > 0 && rate <= 2000) || !(seconds > 0 && seconds <= 600) || !(signupPercent >= 0 && signupPercent <= 100) || !(existing >= 1 && existing <= 10_000)) {
    throw new Error('--rate 1..2000, --seconds 1..600, --signup-percent 0..100, --existing 1..10000');
  }

  const fixtures = JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/stripe/objects.json'), 'utf8')) as { subscription: { customer: string; items: { data: Array<{ price: { id: string } }> } } };
  const fixtureCustomer = fixtures.subscription.customer;
  const plans = loadPlanCatalogue();
  const plansJson = JSON.stringify(plans.ids().map((id) => ({ ...plans.get(id), stripe: { lookupKeys: [id], ...(id === 'starter' ? { priceIds: [fixtures.subscription.items.data[0]!.price.id] } : {}) } })));

  const base = new URL(need('DATABASE_URL'));
  base.pathname = `/tenants_bench_${Date.now().toString(36)}`;
  const databaseUrl = base.toString();
  await ensureDatabase(databaseUrl);
  await migrate(databaseUrl);
  const db = createDb(databaseUrl, { maxConnections: 5 });

  const secret = `whsec_${randomBytes(16).toString('hex')}`;
  const taskQueue = `bench-webhook-${randomUUID().slice(0, 8)}`;
  const url = `http://127.0.0.1:${values.port}`;
  const adminUrl = `http://127.0.0.1:${Number(values.port) + 1}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    TASK_QUEUE: taskQueue,
    PLANS_JSON: plansJson,
    LOG_LEVEL: 'warn',
    STRIPE_WEBHOOK_SECRET: secret,
    STRIPE_API_KEY: 'sk_test_123',
    STRIPE_API_BASE: need('STRIPE_MOCK_URL'),
    JWT_SECRET: randomBytes(32).toString('hex'),
    JWT_ISSUER: 'bench',
    JWT_AUDIENCE: 'bench',
    SERVICE_TOKEN: randomBytes(32).toString('base64url'),
    HOST: '127.0.0.1',
    PORT: values.port,
    ADMIN_PORT: String(Number(values.port) + 1),
    DEPROVISION_GRACE_SECONDS: '0',
    // One client sends everything here: the per-address limits would measure themselves.
    RATE_LIMIT_PER_MINUTE: '0',
    RATE_LIMIT_WEBHOOK_PER_MINUTE: '0',
    DB_POOL_SIZE: process.env.DB_POOL_SIZE ?? '20',
  };

  // Existing customers: live subscriptions on starter with active tenants (as months of signups leave them).
  const userId = userIdForCustomer(fixtureCustomer);
  await db.user.create({ data: { id: userId, stripeCustomerId: fixtureCustomer } });
  const existingSubs = Array.from({ length: existing }, () => `sub_bench_${randomBytes(8).toString('hex')}`);
  const past = new Date(Date.now() - 86_400_000);
  await db.tenant.createMany({
    data: existingSubs.map((s) => ({ id: tenantIdForSubscription(s), userId, plan: 'starter', status: 'active', workflowId: tenantWorkflowId(tenantIdForSubscription(s)) })),
  });
  await db.subscription.createMany({
    data: existingSubs.map((s) => ({ stripeSubscriptionId: s, userId, tenantId: tenantIdForSubscription(s), plan: 'starter', status: 'active', lastEventAt: past })),
  });

  const api = startProcess('api', 'api/server.js', env, values['api-cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['api-cpu-prof']}`] : []);
  const workerNice = Number(values['worker-nice']);
  if (!Number.isInteger(workerNice) || workerNice < 0 || workerNice > 19) throw new Error('--worker-nice 0..19');
  const worker = values['no-worker'] ? undefined : startProcess('worker', 'worker.js', env, [], workerNice);
  const kube = createKube(loadKubeConfig(process.env.KUBECONFIG), { qps: 50, burst: 100, timeoutMs: 15_000 });
  const signups: string[] = [];
  try {
    await waitFor('the API', 60_000, async () => (await fetch(`${adminUrl}/readyz`)).ok);

    const send = async (event: Record<string, unknown>): Promise<{ ms: number; outcome: string } | { error: string }> => {
      const payload = JSON.stringify(event);
      const started = performance.now();
      try {
        const res = await fetch(`${url}/webhooks/stripe`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'Stripe-Signature': signPayload(payload, secret) },
          body: payload,
          signal: AbortSignal.timeout(30_000),
        });
        const body = (await res.json().catch(() => ({}))) as { outcome?: string; dependency?: string; title?: string };
        const ms = performance.now() - started;
        if (!res.ok) return { error: `HTTP ${res.status} ${body.dependency ?? body.title ?? ''}`.trim() };
        return { ms, outcome: body.outcome ?? '' };
      } catch (err) {
        return { error: err instanceof Error ? err.name : 'error' };
      }
    };

    const phase = async (name: string, signupShare: number): Promise<PhaseResult> => {
      const result: PhaseResult = { name, sent: 0, latencies: [], errors: new Map(), signups: [] };
      const total = Math.round(rate * seconds);
      const interval = 1000 / rate;
      const cpuBefore = cpuSeconds(api.pid);
      const bucketsBefore = await serverBuckets(adminUrl);
      const start = performance.now();
      const inflight: Promise<void>[] = [];
      for (let i = 0; i < total; i += 1) {
        const due = start + i * interval;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        const created = Math.floor(Date.now() / 1000);
        let event: Record<string, unknown>;
        let signup: string | undefined;
        // Evenly spread: exactly signupShare% of the events are new subscriptions.
        if (Math.floor(((i + 1) * signupShare) / 100) > Math.floor((i * signupShare) / 100)) {
          const subscription = `sub_bench_${randomBytes(8).toString('hex')}`;
          signup = subscription;
          event = buildTestEvent({ type: 'customer.subscription.created', customer: fixtureCustomer, subscription, plan: 'starter', created });
        } else {
          const subscription = existingSubs[i % existingSubs.length]!;
          event = i % 2 === 0
            ? buildTestEvent({ type: 'invoice.paid', customer: fixtureCustomer, subscription, created })
            : buildTestEvent({ type: 'customer.subscription.updated', customer: fixtureCustomer, subscription, plan: 'starter', created });
        }
        result.sent += 1;
        inflight.push(
          send(event).then((r) => {
            if ('ms' in r) {
              result.latencies.push(r.ms);
              // Only a signup the webhook queued becomes a tenant to wait for and tear down.
              if (signup && r.outcome === 'queued') result.signups.push(signup);
            } else result.errors.set(r.error, (result.errors.get(r.error) ?? 0) + 1);
          }),
        );
      }
      await Promise.all(inflight);
      const cpuAfter = cpuSeconds(api.pid);
      result.server = serverShare(bucketsBefore, await serverBuckets(adminUrl));
      if (cpuBefore !== undefined && cpuAfter !== undefined) result.apiCpuMsPerEvent = ((cpuAfter - cpuBefore) * 1000) / result.sent;
      return result;
    };

    // Warm-up: connections, JIT, pools.
    await phase('warm-up', 0).then(() => undefined);
    const steady = await phase(`steady, ${rate}/s`, 0);
    const withSignups = await phase(`${signupPercent}% signups, ${rate}/s`, signupPercent);
    signups.push(...withSignups.signups);

    console.log(`webhook acknowledgement, ${rate} events/s for ${seconds}s per phase, ${existing} existing subscriptions`);
    const a = report(steady);
    const b = report(withSignups);
    console.log(`p99 ratio (signups / steady)  ${(b.p99 / a.p99).toFixed(2)}   target: p99 <= 50 ms in both`);

    const tenants = signups.map(tenantIdForSubscription);
    if (!worker) return;
    await waitFor(`${tenants.length} new tenants active`, 600_000, async () => (await db.tenant.count({ where: { id: { in: tenants }, status: 'active' } })) === tenants.length);
    console.log(`new tenants active: ${tenants.length}/${tenants.length}`);
  } finally {
    if (!worker) {
      // Their workflows were started but no worker ran them: nothing exists but the runs themselves.
      await terminateRuns(signups.map(tenantIdForSubscription));
      signups.length = 0;
    }
    for (const s of signups) await send2(url, secret, buildTestEvent({ type: 'customer.subscription.deleted', customer: fixtureCustomer, subscription: s }));
    const tenants = signups.map(tenantIdForSubscription);
    await waitFor('new tenants deprovisioned', 600_000, async () => (await db.tenant.count({ where: { id: { in: tenants }, status: 'deprovisioned' } })) === tenants.length).catch((err: Error) =>
      console.error(err.message),
    );
    const leaked = (await kube.list<V1Namespace>('v1', 'Namespace', undefined, `${LABEL_MANAGED_BY}=${MANAGED_BY}`)).filter((ns) => tenants.some((t) => ns.metadata?.name?.endsWith(t) && !ns.metadata?.deletionTimestamp));
    console.log(`leaked namespaces: ${leaked.length}`);
    await stopProcess(api);
    if (worker) await stopProcess(worker);
    await db.$disconnect();
    await dropDatabase(databaseUrl);
  }
}

async function terminateRuns(tenantIds: string[]): Promise<void> {
  const connection = await Connection.connect({ address: need('TEMPORAL_ADDRESS'), connectTimeout: '10s' });
  const client = new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' });
  await Promise.all(tenantIds.map((t) => client.workflow.getHandle(tenantWorkflowId(t)).terminate('webhook benchmark without a worker').catch(() => undefined)));
  await connection.close();
}

async function send2(url: string, secret: string, event: Record<string, unknown>): Promise<void> {
  const payload = JSON.stringify(event);
  await fetch(`${url}/webhooks/stripe`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Stripe-Signature': signPayload(payload, secret) }, body: payload, signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
