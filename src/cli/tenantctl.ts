#!/usr/bin/env node
/**
 * tenantctl: the operator's command line. It works through the service's own HTTP API on the
 * internal admin port (the only port that accepts the service token), so every action goes through
 * the same validation, locks and Temporal calls as the rest of the system.
 *
 *   tenantctl list [--status failed] [--plan pro] [--customer cus_...] [--all]
 *   tenantctl show <tenant>          tenantctl watch <tenant>
 *   tenantctl provision --user <uuid> --plan starter
 *   tenantctl deprovision <tenant> [--grace 3600]     tenantctl cancel-deprovision <tenant>
 *   tenantctl suspend|resume|retry|cleanup <tenant>   tenantctl change-plan <tenant> <plan>
 *   tenantctl events list [--outcome received]        tenantctl events show|reprocess <evt_id>
 *   tenantctl verify-isolation <tenant> [--others 1 | --other <tenant>...] [--stranger <ns>] [--outside <ip:port>]
 *     (this one talks to the cluster itself, with KUBECONFIG, and probes from inside the pods)
 *
 * Environment: TENANTCTL_ADMIN_URL (default http://127.0.0.1:9090), TENANTCTL_TOKEN or SERVICE_TOKEN (the service token; or --token-file).
 * The token is never accepted as an argument: arguments show up in `ps` and shell history.
 *
 * Exit codes (stable, for scripts): see EXIT below.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { NotProbeable, createPodExec, formatTable, verifyTenantIsolation } from '../isolation';
import { createKube, loadKubeConfig } from '../k8s/client';
import { parseLabelSelector } from '../k8s/labels';
import { isUuid, tenantNamespace } from '../naming';
import { loadPlanCatalogue } from '../plans';

export const EXIT = {
  ok: 0,
  /** The operation ran and failed: a watched tenant ended `failed`, or the server had an internal error. */
  failed: 1,
  /** Bad arguments or a request the API refused as invalid (400, 415, 422). */
  usage: 2,
  notFound: 3,
  /** The tenant's state does not allow it (409): not running, not failed, key in use. */
  conflict: 4,
  /** The API or one of its dependencies is unreachable, slow, or rate-limiting (retry later). */
  unavailable: 5,
  /** No token, or the token was refused (401, 403). */
  auth: 6,
} as const;

const TENANT_STATUSES = ['provisioning', 'active', 'failed', 'suspended', 'deprovisioning', 'deprovisioned'];
const SETTLED = new Set(['active', 'failed', 'suspended', 'deprovisioned']);

interface GlobalOptions {
  adminUrl: string;
  tokenFile?: string;
  json?: boolean;
  timeout: number;
}

/** An error with the exit code it maps to and, when the API answered, its problem document. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly problem?: Record<string, unknown>,
  ) {
    super(message);
  }
}

function exitCodeFor(status: number): number {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status === 409) return EXIT.conflict;
  if (status === 429 || status === 502 || status === 503 || status === 504) return EXIT.unavailable;
  if (status >= 400 && status < 500) return EXIT.usage;
  return EXIT.failed;
}

interface Io {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
  sleep(ms: number): Promise<void>;
}

const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number ≥ 0`);
  return n;
};

const tenantArg = (value: string) => {
  if (!isUuid(value)) throw new InvalidArgumentError('a tenant id is a UUID');
  return value.toLowerCase();
};

const labelSelectorArg = (value: string) => {
  try {
    return parseLabelSelector(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

const otherTenant = (value: string) => {
  if (!isUuid(value)) throw new CliError(`--other ${JSON.stringify(value)}: a tenant id is a UUID`, EXIT.usage);
  return value.toLowerCase();
};

function client(opts: GlobalOptions, io: Io) {
  let token: string | undefined;
  const bearer = () => {
    if (token) return token;
    const fromFile = opts.tokenFile ? readFileSync(opts.tokenFile, 'utf8').trim() : undefined;
    token = fromFile || io.env.TENANTCTL_TOKEN || io.env.SERVICE_TOKEN;
    if (!token) throw new CliError('no service token: set TENANTCTL_TOKEN (or SERVICE_TOKEN), or pass --token-file <path>', EXIT.auth);
    return token;
  };

  async function call<T>(base: 'admin', method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const root = opts.adminUrl;
    const url = `${root.replace(/\/+$/, '')}${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { Authorization: `Bearer ${bearer()}`, Accept: 'application/json', ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(opts.timeout),
      });
    } catch (err) {
      if (err instanceof CliError) throw err;
      const cause = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
      const what = `${base} API (--admin-url, TENANTCTL_ADMIN_URL)`;
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      throw new CliError(`${timedOut ? `no answer within ${opts.timeout} ms` : 'cannot reach'} the ${what} at ${root}${timedOut ? '' : `: ${cause}`}`, EXIT.unavailable);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: reported below
    }
    if (!res.ok) {
      const problem = parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined;
      const detail = typeof problem?.detail === 'string' ? problem.detail : `${res.status} ${res.statusText}`;
      const retry = res.headers.get('retry-after');
      throw new CliError(`${detail}${retry ? ` (retry after ${retry} s)` : ''}`, exitCodeFor(res.status), problem ?? { status: res.status });
    }
    if (parsed === undefined) throw new CliError(`${method} ${path} answered ${res.status} without a JSON body`, EXIT.failed);
    return parsed as T;
  }
  return { call };
}

type Tenant = {
  tenantId: string;
  status: string;
  plan: string;
  namespace: string | null;
  currentStep: string | null;
  progress: { completed: number; total: number; completedSteps: string[] };
  lastError: string | null;
  deprovisionAt?: string;
  condition?: { type?: string; step?: string; message?: string; attempts?: number; nextAttemptAt?: string };
  updatedAt: string;
};
type Detail = { tenant: Tenant; userId: string | null; customerId: string | null; steps: { step: string; phase: string; message: string | null; at: string }[] };

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}

/** A JSON value as a table cell. */
const cell = (v: unknown): string => (v === undefined || v === null ? '-' : typeof v === 'string' ? v : JSON.stringify(v));

const conditionText = (t: Tenant) => (t.condition ? `${t.condition.type ?? 'condition'}${t.condition.step ? ` (${t.condition.step})` : ''}` : '-');

function stepLine(s: Detail['steps'][number]): string {
  return `${s.at}  ${s.step.padEnd(22)} ${s.phase.padEnd(19)} ${s.message ?? ''}`.trimEnd();
}

export function buildProgram(io: Io): Command {
  const program = new Command('tenantctl');
  program
    .description('Operate tenant-provisioner: find, watch, provision, suspend, retry and clean up tenants; inspect and reprocess Stripe events.')
    .addOption(new Option('--admin-url <url>', 'internal admin API base URL').env('TENANTCTL_ADMIN_URL').default('http://127.0.0.1:9090'))
    .option('--token-file <path>', 'read the service token from this file (else TENANTCTL_TOKEN or SERVICE_TOKEN)')
    .option('--json', 'machine-readable output (one JSON document; NDJSON for watch)')
    .addOption(new Option('--timeout <ms>', 'deadline of each HTTP request').argParser(positiveInt('--timeout')).default(15_000))
    .configureOutput({ writeOut: (s) => io.out(s.replace(/\n$/, '')), writeErr: (s) => io.err(s.replace(/\n$/, '')) })
    .exitOverride()
    .showSuggestionAfterError()
    .addHelpText(
      'after',
      `
Exit codes: 0 ok; 1 failed (a watched tenant failed, or a server error); 2 invalid arguments or request;
3 not found; 4 the tenant's state does not allow it; 5 API or a dependency unavailable (retry);
6 no token or token refused.`,
    );

  const g = (): GlobalOptions => program.opts<GlobalOptions>();
  const http = () => client(g(), io);
  const print = (json: unknown, human: () => string[]) => {
    if (g().json) io.out(JSON.stringify(json, null, 2));
    else for (const line of human()) io.out(line);
  };

  program
    .command('list')
    .description('list tenants, oldest first; filters combine')
    .addOption(new Option('--status <status>', 'only tenants in this status').choices(TENANT_STATUSES))
    .option('--plan <plan>', 'only tenants on this plan')
    .option('--customer <id>', 'only tenants of this Stripe customer (cus_...)')
    .addOption(new Option('--user <uuid>', 'only tenants of this user').argParser(tenantArg))
    .addOption(new Option('--limit <n>', 'page size (1-100)').argParser(positiveInt('--limit')).default(50))
    .option('--cursor <cursor>', 'continue after a previous page (its nextCursor)')
    .option('--all', 'follow every page')
    .action(async (o: { status?: string; plan?: string; customer?: string; user?: string; limit: number; cursor?: string; all?: boolean }) => {
      const tenants: Tenant[] = [];
      let cursor = o.cursor;
      for (;;) {
        const q = new URLSearchParams({ limit: String(o.limit) });
        if (o.status) q.set('status', o.status);
        if (o.plan) q.set('plan', o.plan);
        if (o.customer) q.set('customerId', o.customer);
        if (o.user) q.set('userId', o.user);
        if (cursor) q.set('cursor', cursor);
        const page = await http().call<{ tenants: Tenant[]; nextCursor: string | null }>('admin', 'GET', `/api/tenants?${q.toString()}`);
        tenants.push(...page.tenants);
        cursor = page.nextCursor ?? undefined;
        if (!o.all || !cursor) break;
      }
      print({ tenants, nextCursor: cursor ?? null }, () => [
        ...(tenants.length === 0
          ? ['no tenants match']
          : table([
              ['TENANT', 'STATUS', 'PLAN', 'STEP', 'PROGRESS', 'CONDITION', 'UPDATED'],
              ...tenants.map((t) => [t.tenantId, t.status, t.plan, t.currentStep ?? '-', `${t.progress.completed}/${t.progress.total}`, conditionText(t), t.updatedAt]),
            ])),
        ...(cursor ? [`more: tenantctl list --cursor ${cursor} (or --all)`] : []),
      ]);
    });

  program
    .command('show')
    .description('one tenant: status, step, condition, pending deprovision, last error and step log')
    .argument('<tenant>', 'tenant id', tenantArg)
    .action(async (tenantId: string) => {
      const d = await http().call<Detail>('admin', 'GET', `/admin/tenants/${tenantId}`);
      const t = d.tenant;
      print(d, () => [
        `tenant       ${t.tenantId}`,
        `status       ${t.status}`,
        `plan         ${t.plan}`,
        `namespace    ${t.namespace ?? '-'}`,
        `user         ${d.userId ?? '-'}${d.customerId ? ` (Stripe ${d.customerId})` : ''}`,
        `step         ${t.currentStep ?? '-'} (${t.progress.completed}/${t.progress.total} provisioning steps done)`,
        `condition    ${t.condition ? `${conditionText(t)}: ${t.condition.message ?? ''}${t.condition.attempts ? `; ${t.condition.attempts} attempts` : ''}${t.condition.nextAttemptAt ? `; next at ${t.condition.nextAttemptAt}` : ''}` : 'none'}`,
        `deprovision  ${t.deprovisionAt ? `pending, at ${t.deprovisionAt} (tenantctl cancel-deprovision ${t.tenantId})` : 'none pending'}`,
        `last error   ${t.lastError ?? '-'}`,
        `updated      ${t.updatedAt}`,
        '',
        'step log:',
        ...(d.steps.length ? d.steps.map(stepLine) : ['  (empty)']),
      ]);
    });

  program
    .command('watch')
    .description('follow a provision or deprovision step by step until the tenant settles (active, suspended, failed, deprovisioned)')
    .argument('<tenant>', 'tenant id', tenantArg)
    .addOption(new Option('--interval <ms>', 'poll interval').argParser(positiveInt('--interval')).default(1_000))
    .addOption(new Option('--max-wait <seconds>', 'give up after this long (exit 5)').argParser(positiveInt('--max-wait')).default(1_800))
    .addOption(new Option('--until <status>', 'wait for this status instead of any settled one').choices(TENANT_STATUSES))
    .action(async (tenantId: string, o: { interval: number; maxWait: number; until?: string }) => {
      const deadline = Date.now() + o.maxWait * 1000;
      const seen = new Set<string>();
      let lastStatus = '';
      let lastStep = '';
      const emit = (event: Record<string, unknown>, human: string) => (g().json ? io.out(JSON.stringify(event)) : io.out(human));
      for (;;) {
        const d = await http().call<Detail>('admin', 'GET', `/admin/tenants/${tenantId}`);
        const t = d.tenant;
        for (const s of d.steps) {
          const key = `${s.at}|${s.step}|${s.phase}`;
          if (seen.has(key)) continue;
          seen.add(key);
          emit({ type: 'step', ...s }, stepLine(s));
        }
        const step = t.currentStep ?? '';
        if (t.status !== lastStatus || step !== lastStep) {
          emit(
            { type: 'status', status: t.status, currentStep: t.currentStep, progress: t.progress, condition: t.condition ?? null },
            `-- ${t.status}${t.currentStep ? `, at ${t.currentStep}` : ''} (${t.progress.completed}/${t.progress.total})${t.condition ? `, ${conditionText(t)}: ${t.condition.message ?? ''}` : ''}`,
          );
          lastStatus = t.status;
          lastStep = step;
        }
        const done = o.until ? t.status === o.until : SETTLED.has(t.status);
        if (done) {
          emit({ type: 'done', tenant: t }, `${t.tenantId} is ${t.status}${t.lastError ? `: ${t.lastError}` : ''}`);
          if (t.status === 'failed' && o.until !== 'failed') throw new CliError(`tenant ${t.tenantId} failed: ${t.lastError ?? 'no reason recorded'}`, EXIT.failed);
          return;
        }
        if (Date.now() >= deadline) throw new CliError(`tenant ${t.tenantId} is still ${t.status} after ${o.maxWait} s`, EXIT.unavailable);
        await io.sleep(o.interval);
      }
    });

  const accepted = (r: Record<string, unknown>, what: string) =>
    print(r, () => [`${what}: tenant ${String(r.tenantId)} (workflow ${String(r.workflowId)}); follow it with: tenantctl watch ${String(r.tenantId)}`]);

  program
    .command('provision')
    .description("provision a user's tenant (or bring back a failed or deprovisioned one with --tenant)")
    .requiredOption('--user <uuid>', 'the user who owns it', tenantArg)
    .requiredOption('--plan <plan>', 'plan id from the catalogue')
    .option('--tenant <uuid>', 'tenant id (default: a new one)', tenantArg)
    .option('--idempotency-key <key>', 'repeat a request safely: the same key and body get the same answer (default: a new key)')
    .action(async (o: { user: string; plan: string; tenant?: string; idempotencyKey?: string }) => {
      const r = await http().call<Record<string, unknown>>('admin', 'POST', '/api/tenants/provision', { userId: o.user, plan: o.plan, ...(o.tenant ? { tenantId: o.tenant } : {}) }, { 'Idempotency-Key': o.idempotencyKey ?? `tenantctl-${randomUUID()}` });
      accepted(r, 'provisioning');
    });

  program
    .command('deprovision')
    .description('deprovision a tenant, after an optional grace period')
    .argument('<tenant>', 'tenant id', tenantArg)
    .addOption(new Option('--grace <seconds>', 'keep the tenant this long first').argParser(positiveInt('--grace')))
    .option('--reason <text>', 'why (kept in the step log)')
    .option('--idempotency-key <key>', 'repeat a request safely (default: a new key)')
    .action(async (tenantId: string, o: { grace?: number; reason?: string; idempotencyKey?: string }) => {
      const body = { tenantId, reason: o.reason ?? 'requested by an operator (tenantctl)', ...(o.grace !== undefined ? { graceSeconds: o.grace } : {}) };
      accepted(await http().call('admin', 'POST', '/api/tenants/deprovision', body, { 'Idempotency-Key': o.idempotencyKey ?? `tenantctl-${randomUUID()}` }), 'deprovisioning');
    });

  program
    .command('cleanup')
    .description('remove whatever a failed tenant or a failed cleanup left behind (a cleanup run if its workflow is closed)')
    .argument('<tenant>', 'tenant id', tenantArg)
    .option('--reason <text>', 'why', 'cleanup by an operator (tenantctl)')
    .action(async (tenantId: string, o: { reason: string }) => {
      accepted(await http().call('admin', 'POST', '/api/tenants/deprovision', { tenantId, reason: o.reason, graceSeconds: 0 }, { 'Idempotency-Key': `tenantctl-${randomUUID()}` }), 'cleaning up');
    });

  const action = (name: string, description: string, path: string, body?: (o: Record<string, unknown>) => unknown) => {
    const cmd = program.command(name).description(description).argument('<tenant>', 'tenant id', tenantArg);
    return {
      cmd,
      done: () =>
        cmd.action(async (tenantId: string, o: Record<string, unknown>) => {
          accepted(await http().call('admin', 'POST', `/admin/tenants/${tenantId}/${path}`, body ? body(o) : undefined), name);
        }),
    };
  };
  const suspend = action('suspend', 'scale the app to zero, keep the data', 'suspend', (o) => (o.reason ? { reason: o.reason } : {}));
  suspend.cmd.option('--reason <text>', 'why');
  suspend.done();
  action('resume', 'resume a suspended tenant', 'resume').done();
  action('cancel-deprovision', 'cancel a deprovision still in its grace period', 'cancel-deprovision').done();
  action('retry', 'provision a failed tenant again (a new run)', 'retry').done();
  program
    .command('change-plan')
    .description('move a tenant to another plan (quota, limits and app values re-applied)')
    .argument('<tenant>', 'tenant id', tenantArg)
    .argument('<plan>', 'plan id from the catalogue')
    .action(async (tenantId: string, plan: string) => {
      accepted(await http().call('admin', 'POST', `/admin/tenants/${tenantId}/change-plan`, { plan }), `changing plan to ${plan}`);
    });

  program
    .command('verify-isolation')
    .description("probe a live tenant's isolation from inside its pods and print the truth table (needs cluster credentials: KUBECONFIG; pods/exec in the namespaces probed)")
    .argument('<tenant>', 'tenant id', tenantArg)
    .addOption(new Option('--others <n>', 'how many other tenants to probe against (those on its node first)').argParser(positiveInt('--others')).default(1))
    .option('--other <tenant...>', 'the other tenants to probe against, by id (instead of --others)')
    .addOption(new Option('--ingress-namespace <ns>', "the ingress controller's namespace").env('INGRESS_NAMESPACE').default('ingress-nginx'))
    .addOption(
      new Option('--ingress-selector <k=v,...>', "labels of the ingress controller's pods")
        .env('INGRESS_POD_SELECTOR')
        .argParser(labelSelectorArg)
        .default({ 'app.kubernetes.io/name': 'ingress-nginx' }, 'app.kubernetes.io/name=ingress-nginx'),
    )
    .option('--stranger <ns...>', 'namespaces of no tenant whose pods must not reach it')
    .option('--outside <ip:port>', 'a host outside the cluster that you own (TCP); probed as the plan egress says')
    .addOption(new Option('--outside-udp <port>', 'a UDP echo port on the outside host').argParser(positiveInt('--outside-udp')))
    .option('--probe-command <cmd>', 'the probe in the pods\' image', '/tenant-app probe')
    .addOption(new Option('--namespace-prefix <prefix>', 'tenant namespaces are <prefix>-<uuid>').env('NAMESPACE_PREFIX').default('tenant'))
    .action(
      async (
        tenantId: string,
        o: { others: number; other?: string[]; ingressNamespace: string; ingressSelector: Record<string, string>; stranger?: string[]; outside?: string; outsideUdp?: number; probeCommand: string; namespacePrefix: string },
      ) => {
        const outside = o.outside ? /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(o.outside) : undefined;
        if (o.outside && !outside) throw new CliError('--outside must be an IPv4 address and port, e.g. 203.0.113.10:8080', EXIT.usage);
        const kc = loadKubeConfig(io.env.KUBECONFIG);
        try {
          const cells = await verifyTenantIsolation(
            { kube: createKube(kc, { timeoutMs: 15_000 }), exec: createPodExec(kc), plans: loadPlanCatalogue(io.env.PLANS_JSON) },
            tenantNamespace(tenantId, o.namespacePrefix),
            {
              others: o.others,
              ...(o.other ? { otherNamespaces: o.other.map((id) => tenantNamespace(otherTenant(id), o.namespacePrefix)) } : {}),
              ingressNamespace: o.ingressNamespace,
              ingressPodSelector: o.ingressSelector,
              strangerNamespaces: o.stranger ?? [],
              ...(outside ? { outside: { ip: outside[1]!, httpPort: Number(outside[2]), ...(o.outsideUdp ? { udpPort: o.outsideUdp } : {}) } } : {}),
              probeCommand: o.probeCommand.split(/\s+/).filter(Boolean),
            },
          );
          print({ tenantId, ok: cells.every((c) => c.ok), cells }, () => formatTable(cells).split('\n'));
          if (!cells.every((c) => c.ok)) throw new CliError(`isolation of tenant ${tenantId} does not hold: ${cells.filter((c) => !c.ok).length} of ${cells.length} cells differ from what its policies promise`, EXIT.failed);
        } catch (err) {
          if (err instanceof NotProbeable) throw new CliError(`cannot probe tenant ${tenantId}: ${err.message}`, EXIT.conflict);
          throw err;
        }
      },
    );

  const events = program.command('events').description('Stripe events the webhook recorded');
  events
    .command('list')
    .description('recorded Stripe events, newest first')
    .option('--outcome <outcome>', 'only events with this outcome (e.g. received: never went through)')
    .option('--type <type>', 'only events of this Stripe type (e.g. invoice.paid)')
    .addOption(new Option('--tenant <uuid>', 'only events for this tenant').argParser(tenantArg))
    .addOption(new Option('--limit <n>', 'page size').argParser(positiveInt('--limit')).default(50))
    .option('--cursor <cursor>', 'continue after a previous page')
    .action(async (o: { outcome?: string; type?: string; tenant?: string; limit: number; cursor?: string }) => {
      const q = new URLSearchParams({ limit: String(o.limit) });
      if (o.outcome) q.set('outcome', o.outcome);
      if (o.type) q.set('type', o.type);
      if (o.tenant) q.set('tenantId', o.tenant);
      if (o.cursor) q.set('cursor', o.cursor);
      const page = await http().call<{ events: Record<string, unknown>[]; nextCursor?: string | null }>('admin', 'GET', `/api/events?${q.toString()}`);
      const cols = ['id', 'type', 'outcome', 'attempts', 'tenantId', 'receivedAt'];
      print(page, () => [
        ...(page.events.length === 0 ? ['no events match'] : table([cols.map((c) => c.toUpperCase()), ...page.events.map((e) => cols.map((c) => cell(e[c])))])),
        ...(page.nextCursor ? [`more: tenantctl events list --cursor ${page.nextCursor}`] : []),
      ]);
    });
  events
    .command('show')
    .description('one recorded event, with what it queued for Temporal (its outbox rows)')
    .argument('<eventId>', 'Stripe event id (evt_...)')
    .action(async (eventId: string) => {
      if (!/^evt_[A-Za-z0-9_]+$/.test(eventId)) throw new CliError('a Stripe event id looks like evt_...', EXIT.usage);
      const e = await http().call<Record<string, unknown> & { outbox?: Record<string, unknown>[] }>('admin', 'GET', `/api/events/${encodeURIComponent(eventId)}`);
      print(e, () => [
        ...['id', 'type', 'outcome', 'tenantId', 'detail', 'attempts', 'stripeCreatedAt', 'receivedAt', 'processedAt'].map((k) => `${k.padEnd(16)} ${cell(e[k])}`),
        '',
        'outbox:',
        ...((e.outbox ?? []).length ? (e.outbox ?? []).map((o) => `  ${cell(o.id)}  ${o.deliveredAt ? `delivered ${cell(o.deliveredAt)}` : o.failedAt ? `failed ${cell(o.failedAt)}: ${cell(o.lastError)}` : `pending (${cell(o.attempts)} attempts)`}`) : ['  (none)']),
      ]);
    });
  events
    .command('reprocess')
    .description('hand a recorded event to Temporal again (e.g. one stuck in received)')
    .argument('<eventId>', 'Stripe event id (evt_...)')
    .action(async (eventId: string) => {
      if (!/^evt_[A-Za-z0-9_]+$/.test(eventId)) throw new CliError('a Stripe event id looks like evt_...', EXIT.usage);
      const r = await http().call<Record<string, unknown>>('admin', 'POST', `/api/events/${encodeURIComponent(eventId)}/reprocess`, {});
      print(r, () => [`event ${eventId}: ${cell(r.outcome ?? 'reprocessed')}`]);
    });

  return program;
}

/** Runs one command line; returns the exit code instead of exiting (tests call this too). */
export async function run(argv: string[], io: Io): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are not errors; commander already printed the message.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const cliError = err instanceof CliError ? err : new CliError(err instanceof Error ? err.message : String(err), EXIT.failed);
    if (program.opts<GlobalOptions>().json) io.err(JSON.stringify({ error: { message: cliError.message, exitCode: cliError.exitCode, ...(cliError.problem ? { problem: cliError.problem } : {}) } }));
    else io.err(`tenantctl: ${cliError.message}${typeof cliError.problem?.requestId === 'string' ? ` [request ${cliError.problem.requestId}]` : ''}`);
    return cliError.exitCode;
  }
}

if (require.main === module) {
  run(process.argv.slice(2), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`tenantctl: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = EXIT.failed;
    },
  );
}
