/**
 * What every activity module shares: the dependencies the worker wires once, the step log, and
 * the mapping of Kubernetes, Helm and database errors into retryable or final failures.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { poolOf, type Db } from '../db/client';
import { isDbError, toDbActivityError } from '../db/errors';
import type { Helm } from '../helm/helm';
import { HelmError } from '../helm/helm';
import type { Kube } from '../k8s/client';
import { toActivityError } from '../k8s/errors';
import type { Placement } from '../config';
import type { PodExec } from '../isolation/exec';
import type { IsolationCheckSettings } from './isolation';
import type { NetworkSettings } from '../k8s/network-policies';
import type { Plan, PlanCatalogue } from '../plans';

export interface ActivityDeps {
  db: Db;
  kube: Kube;
  helm: Helm;
  plans: PlanCatalogue;
  settings: {
    namespacePrefix: string;
    ingressNamespace: string;
    /** The cluster's ranges and the ingress controller's pods, for the network policies (default: DEFAULT_NETWORK_SETTINGS). */
    network?: NetworkSettings;
    chart: string;
    helmTimeoutSeconds: number;
    /** A `pending-*` release younger than this may belong to a helm still running (default: Helm's worst case). */
    helmLockStaleSeconds?: number;
    /** Optional image override for the tenant chart (e.g. a registry mirror). */
    image?: { repository?: string; tag?: string; digest?: string };
    /** A UDP port of the tenant app, exposed on its Service. */
    udpPort?: number;
    /** Where tenant pods run (the chart's nodeSelector and tolerations). */
    placement?: Placement;
    /** The per-tenant isolation check after deployApp; absent: off (e.g. a kwok-only cluster, where nothing runs). */
    isolationCheck?: IsolationCheckSettings;
  };
  /** Runs a command in a pod (the isolation check's probes). */
  exec?: PodExec;
  /** Source of randomness for credentials; tests may pass a deterministic one. */
  random?: (bytes: number) => Buffer;
}

export interface TenantRef {
  tenantId: string;
  namespace: string;
}


type Phase = 'started' | 'succeeded' | 'failed' | 'compensated' | 'compensation_failed';

export type StepKit = ReturnType<typeof createStepKit>;

export function createStepKit(deps: ActivityDeps) {
  const { plans } = deps;
  // Every statement an activity sends goes straight to the pool (see `poolOf`): one round trip
  // each, and no query engine in the worker.
  const sql = poolOf(deps.db);

  function plan(id: string): Plan {
    try {
      return plans.get(id);
    } catch (err) {
      throw ApplicationFailure.nonRetryable((err as Error).message, 'UnknownPlan');
    }
  }

  /** The step log's idempotency key: a retried activity writes the same row again, not a new one. */
  function eventKey(step: string, phase: Phase): string {
    const { workflowExecution, attempt, activityId } = Context.current().info;
    const attemptPart = phase === 'failed' || phase === 'compensation_failed' ? `/${attempt}` : '';
    const run = workflowExecution ? `${workflowExecution.workflowId}/${workflowExecution.runId}` : 'standalone';
    return `${run}/${activityId}/${step}/${phase}${attemptPart}`;
  }

  /** A step log entry: a step-log row's columns, for `audit` or a statement that writes one with its change. */
  function stepRow(tenantId: string, step: string, phase: Phase, message?: string): [string, string, string, Phase, string | null] {
    return [tenantId, eventKey(step, phase), step, phase, message?.slice(0, 2000) ?? null];
  }

  /** Step log entry, one round trip. */
  async function audit(tenantId: string, step: string, phase: Phase, message?: string): Promise<void> {
    await sql.query(
      `INSERT INTO tenant_steps (tenant_id, event_key, step, phase, message) VALUES ($1::uuid, $2, $3, $4, $5)
       ON CONFLICT (event_key) DO NOTHING`,
      stepRow(tenantId, step, phase, message),
    );
  }

  /** Marks the step current on the tenant row and logs its start, in one statement. */
  async function started(tenantId: string, step: string): Promise<void> {
    await sql.query(
      `WITH current_step AS (
         UPDATE tenants SET current_step = $3, updated_at = now() WHERE id = $1::uuid
       )
       INSERT INTO tenant_steps (tenant_id, event_key, step, phase) VALUES ($1::uuid, $2, $3, 'started')
       ON CONFLICT (event_key) DO NOTHING`,
      [tenantId, eventKey(step, 'started'), step],
    );
  }

  /**
   * Wraps one step: marks it current on the tenant row, logs start and outcome, and maps errors.
   * `compensation` steps log compensated / compensation_failed instead of succeeded / failed.
   */
  async function step<T>(tenantId: string, name: string, body: () => Promise<T>, compensation = false): Promise<T> {
    await dbOnly(`${name} (step log)`, () => started(tenantId, name));
    let result: T;
    try {
      result = await body();
    } catch (err) {
      const mapped = mapError(err, name);
      await audit(tenantId, name, compensation ? 'compensation_failed' : 'failed', mapped.message).catch(() => undefined);
      throw mapped;
    }
    await dbOnly(`${name} (step log)`, () => audit(tenantId, name, compensation ? 'compensated' : 'succeeded'));
    return result;
  }

  function mapError(err: unknown, what: string): Error {
    if (err instanceof ApplicationFailure) return err;
    if (err instanceof HelmError) {
      return err.retryable
        ? ApplicationFailure.retryable(err.message, 'HelmFailed')
        : ApplicationFailure.nonRetryable(err.message, 'HelmRejected');
    }
    if (isDbError(err)) return toDbActivityError(err, `${what} (database)`);
    if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'number') return toActivityError(err, what);
    return err instanceof Error ? err : new Error(String(err));
  }

  /**
   * Calls that only touch PostgreSQL. Anything but a final database error (constraint, schema,
   * bad data) or a business failure counts as the database being unavailable, whatever shape the
   * driver gave it (a refused connection is a plain socket error): the workflow keeps retrying
   * those for as long as the outage lasts.
   */
  async function dbOnly<T>(what: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      if (isDbError(err)) throw toDbActivityError(err, `${what} (database)`);
      throw ApplicationFailure.retryable(`${what} (database): ${err instanceof Error ? err.message : String(err)}`, 'DatabaseUnavailable');
    }
  }

  /** Kubernetes calls: errors become retryable or final failures with the action named. */
  async function k8s<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw toActivityError(err, what);
    }
  }

  return { sql, plan, audit, stepRow, eventKey, step, mapError, dbOnly, k8s };
}
