/**
 * Provisioning activities, built once per worker by `createActivities(deps)`.
 *
 * Every activity is idempotent: Kubernetes objects are written with server-side apply (or created
 * only when absent), deletes treat "already gone" as success, and database writes are upserts on
 * unique keys. Each one mirrors its progress into PostgreSQL (tenant row + step log) so the status
 * API works without asking Temporal.
 *
 * Secrets: tenant credentials are generated inside `ensureSecrets` and go straight to the
 * Kubernetes API. They never appear in an activity's input, result, error or log line, all of which
 * Temporal stores in workflow history (visible in its Web UI).
 */
import { randomBytes } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { V1Namespace } from '@kubernetes/client-node';
import type { Db } from '../db/client';
import { isPrismaError, toDbActivityError } from '../db/errors';
import type { Helm } from '../helm/helm';
import { HelmError } from '../helm/helm';
import type { Kube } from '../k8s/client';
import { toActivityError } from '../k8s/errors';
import { LABEL_TENANT_ID } from '../k8s/labels';
import { buildNamespace } from '../k8s/namespace';
import { NETWORK_POLICY_NAMES, buildNetworkPolicies } from '../k8s/network-policies';
import { LIMIT_RANGE_NAME, RESOURCE_QUOTA_NAME, buildLimitRange, buildResourceQuota } from '../k8s/quota';
import { TENANT_SECRET_NAME, buildTenantSecret, generateTenantCredentials } from '../k8s/secrets';
import { TENANT_RELEASE_NAME, tenantNamespace } from '../naming';
import type { Plan, PlanCatalogue } from '../plans';
import type { TenantStatus } from '../contract';
import { tenantWorkflowId } from '../contract';

export interface ActivityDeps {
  db: Db;
  kube: Kube;
  helm: Helm;
  plans: PlanCatalogue;
  settings: {
    namespacePrefix: string;
    ingressNamespace: string;
    chart: string;
    helmTimeoutSeconds: number;
    /** Optional image override for the tenant chart (e.g. a registry mirror). */
    image?: { repository?: string; tag?: string };
  };
  /** Source of randomness for credentials; tests may pass a deterministic one. */
  random?: (bytes: number) => Buffer;
}

export interface TenantRef {
  tenantId: string;
  namespace: string;
}

/** The client or a transaction: what a step-log write needs. */
type StepLogWriter = Pick<Db, 'tenantStep'>;

type Phase = 'started' | 'succeeded' | 'failed' | 'compensated' | 'compensation_failed';

/** How long a namespace may take to disappear after deletion before the activity gives up (retried). */
const NAMESPACE_GONE_POLL_MS = 1_000;

export function createActivities(deps: ActivityDeps) {
  const { db, kube, helm, plans, settings } = deps;
  const random = deps.random ?? randomBytes;

  function plan(id: string): Plan {
    try {
      return plans.get(id);
    } catch (err) {
      throw ApplicationFailure.nonRetryable((err as Error).message, 'UnknownPlan');
    }
  }

  /**
   * Step log entry; the key makes a retried activity write the same row again, not a new one.
   * `client` is a transaction when the entry must land together with the change it records.
   */
  async function audit(tenantId: string, step: string, phase: Phase, message?: string, client: StepLogWriter = db): Promise<void> {
    const ctx = Context.current();
    const { workflowExecution, attempt, activityId } = ctx.info;
    const attemptPart = phase === 'failed' || phase === 'compensation_failed' ? `/${attempt}` : '';
    const run = workflowExecution ? `${workflowExecution.workflowId}/${workflowExecution.runId}` : 'standalone';
    const eventKey = `${run}/${activityId}/${step}/${phase}${attemptPart}`;
    await client.tenantStep.upsert({
      where: { eventKey },
      create: { tenantId, eventKey, step, phase, message: message?.slice(0, 2000) ?? null },
      update: {},
    });
  }

  /**
   * Wraps one step: marks it current on the tenant row, logs start and outcome, and maps errors.
   * `compensation` steps log compensated / compensation_failed instead of succeeded / failed.
   */
  async function step<T>(tenantId: string, name: string, body: () => Promise<T>, compensation = false): Promise<T> {
    await db.tenant.updateMany({ where: { id: tenantId }, data: { currentStep: name } });
    await audit(tenantId, name, 'started');
    try {
      const result = await body();
      await audit(tenantId, name, compensation ? 'compensated' : 'succeeded');
      return result;
    } catch (err) {
      const mapped = mapError(err, name);
      await audit(tenantId, name, compensation ? 'compensation_failed' : 'failed', mapped.message).catch(() => undefined);
      throw mapped;
    }
  }

  function mapError(err: unknown, what: string): Error {
    if (err instanceof ApplicationFailure) return err;
    if (err instanceof HelmError) {
      return err.retryable
        ? ApplicationFailure.retryable(err.message, 'HelmFailed')
        : ApplicationFailure.nonRetryable(err.message, 'HelmRejected');
    }
    if (isPrismaError(err)) return toDbActivityError(err, `${what} (database)`);
    if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'number') return toActivityError(err, what);
    return err instanceof Error ? err : new Error(String(err));
  }

  /** Activities that only touch PostgreSQL: errors mapped like any step's, without the step log. */
  async function dbOnly<T>(what: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (err) {
      throw mapError(err, what);
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

  function chartValues(tenantId: string, p: Plan, suspended: boolean): Record<string, unknown> {
    return {
      tenant: { id: tenantId, plan: p.id },
      replicaCount: suspended ? 0 : p.app.replicas,
      resources: {
        requests: { cpu: p.app.requestsCpu, memory: p.app.requestsMemory },
        limits: { cpu: p.app.limitsCpu, memory: p.app.limitsMemory },
      },
      existingSecret: TENANT_SECRET_NAME,
      ...(settings.image?.repository || settings.image?.tag
        ? { image: { ...(settings.image.repository ? { repository: settings.image.repository } : {}), ...(settings.image.tag ? { tag: settings.image.tag } : {}) } }
        : {}),
    };
  }

  return {
    /** Step 1: the tenant row, status `provisioning`. A failed or removed tenant may be provisioned again. */
    async recordTenant(input: { tenantId: string; plan: string; userId?: string; customerId?: string }): Promise<void> {
      let workflowId: string;
      try {
        workflowId = tenantWorkflowId(input.tenantId);
      } catch (err) {
        throw ApplicationFailure.nonRetryable((err as Error).message, 'InvalidTenant');
      }
      return dbOnly('record tenant', async () => {
        plan(input.plan);
        const existing = await db.tenant.findUnique({ where: { id: input.tenantId } });
        if (!existing) {
          await db.tenant.upsert({
            where: { id: input.tenantId },
            create: {
              id: input.tenantId,
              userId: input.userId ?? null,
              plan: input.plan,
              status: 'provisioning',
              workflowId,
              currentStep: 'recordTenant',
              metadata: input.customerId ? { stripeCustomerId: input.customerId } : {},
            },
            update: {},
          });
        } else if (existing.status === 'failed' || existing.status === 'deprovisioned') {
          await db.tenant.update({
            where: { id: input.tenantId },
            data: { status: 'provisioning', plan: input.plan, lastError: null, currentStep: 'recordTenant' },
          });
        }
        await audit(input.tenantId, 'recordTenant', 'succeeded');
      });
    },

    /** Step 2: the namespace name, a pure function of the tenant id, stored on the row. */
    async assignNamespace(input: { tenantId: string }): Promise<string> {
      let namespace: string;
      try {
        namespace = tenantNamespace(input.tenantId, settings.namespacePrefix);
      } catch (err) {
        throw ApplicationFailure.nonRetryable((err as Error).message, 'InvalidTenant');
      }
      return step(input.tenantId, 'assignNamespace', async () => {
        await db.tenant.update({ where: { id: input.tenantId }, data: { namespace } });
        return namespace;
      });
    },

    /** Step 3: the namespace, labelled, with Pod Security Admission `restricted`. Also re-labels on plan change. */
    async ensureNamespace(input: TenantRef & { plan: string }): Promise<void> {
      const p = plan(input.plan);
      await step(input.tenantId, 'ensureNamespace', async () => {
        const existing = await k8s(`read Namespace ${input.namespace}`, () =>
          kube.read<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', name: input.namespace }),
        );
        const owner = existing?.metadata?.labels?.[LABEL_TENANT_ID];
        if (existing && owner !== input.tenantId) {
          throw ApplicationFailure.nonRetryable(
            `namespace ${input.namespace} already exists and belongs to ${owner ? `tenant ${owner}` : 'nobody managed by the provisioner'}; refusing to take it over`,
            'NamespaceConflict',
          );
        }
        if (existing?.metadata?.deletionTimestamp) {
          // A previous deprovision is still draining it: wait (retry) rather than fight the deletion.
          throw ApplicationFailure.retryable(`namespace ${input.namespace} is still being deleted`, 'NamespaceTerminating');
        }
        await k8s(`apply Namespace ${input.namespace}`, () =>
          kube.apply(buildNamespace({ name: input.namespace, tenantId: input.tenantId, plan: p.id })),
        );
      });
    },

    /** Step 4: default-deny plus the few allowed paths (same namespace, DNS, ingress controller). */
    async applyNetworkPolicies(input: TenantRef & { plan: string }): Promise<void> {
      await step(input.tenantId, 'applyNetworkPolicies', async () => {
        const policies = buildNetworkPolicies({ ...input, ingressNamespace: settings.ingressNamespace });
        for (const np of policies) {
          await k8s(`apply NetworkPolicy ${input.namespace}/${np.metadata?.name}`, () => kube.apply(np));
        }
      });
    },

    /** Step 5: ResourceQuota and LimitRange (a quota alone rejects pods that set no requests). */
    async applyResourceLimits(input: TenantRef & { plan: string }): Promise<void> {
      const p = plan(input.plan);
      await step(input.tenantId, 'applyResourceLimits', async () => {
        const args = { namespace: input.namespace, tenantId: input.tenantId, plan: p };
        await k8s(`apply LimitRange in ${input.namespace}`, () => kube.apply(buildLimitRange(args)));
        await k8s(`apply ResourceQuota in ${input.namespace}`, () => kube.apply(buildResourceQuota(args)));
      });
    },

    /** Step 6: tenant credentials, generated here and created only when absent (never rotated by a retry). */
    async ensureSecrets(input: TenantRef & { plan: string }): Promise<{ secretName: string; created: boolean }> {
      return step(input.tenantId, 'ensureSecrets', async () => {
        const exists = await k8s(`read Secret ${input.namespace}/${TENANT_SECRET_NAME}`, () =>
          kube.read({ apiVersion: 'v1', kind: 'Secret', name: TENANT_SECRET_NAME, namespace: input.namespace }),
        );
        if (exists) return { secretName: TENANT_SECRET_NAME, created: false };
        const secret = buildTenantSecret({ ...input, data: generateTenantCredentials(random) });
        const created = await k8s(`create Secret ${input.namespace}/${TENANT_SECRET_NAME}`, () => kube.createIfAbsent(secret));
        return { secretName: TENANT_SECRET_NAME, created };
      });
    },

    /** Step 7: the tenant's application, `helm upgrade --install --atomic`, heartbeating while Helm waits. */
    async deployApp(input: TenantRef & { plan: string; suspended: boolean }): Promise<{ revision: number }> {
      const p = plan(input.plan);
      const ctx = Context.current();
      return step(input.tenantId, input.suspended ? 'suspendApp' : 'deployApp', async () => {
        const release = await helm.upgradeInstall({
          release: TENANT_RELEASE_NAME,
          namespace: input.namespace,
          chart: settings.chart,
          values: chartValues(input.tenantId, p, input.suspended),
          timeoutSeconds: settings.helmTimeoutSeconds,
          signal: ctx.cancellationSignal,
          onProgress: (elapsedMs) => ctx.heartbeat({ waitingForReadyMs: elapsedMs }),
        });
        return { revision: release.revision };
      });
    },

    /** Step 8 and every later status change, mirrored into the tenant row and the step log. */
    async setTenantStatus(input: { tenantId: string; status: TenantStatus; step: string; error?: string }): Promise<void> {
      // One transaction: a reader that sees the new status also sees the step that set it
      // (the status API counts progress from the step log once a tenant is no longer in flight).
      return dbOnly('update tenant status', () => db.$transaction(async (tx) => {
        await tx.tenant.update({
          where: { id: input.tenantId },
          data: {
            status: input.status,
            currentStep: null,
            ...(input.status === 'failed' ? { lastError: input.error ?? 'unknown error' } : {}),
            ...(input.status === 'active' ? { lastError: null } : {}),
          },
        });
        await audit(input.tenantId, input.step, input.status === 'failed' ? 'failed' : 'succeeded', `status ${input.status}${input.error ? `: ${input.error}` : ''}`, tx);
      }));
    },

    /** A lifecycle change failed for good: the tenant stays as it was, the reason is recorded. */
    async recordTenantError(input: { tenantId: string; step: string; error: string }): Promise<void> {
      return dbOnly('record tenant error', () => db.$transaction(async (tx) => {
        await tx.tenant.update({ where: { id: input.tenantId }, data: { lastError: input.error, currentStep: null } });
        await audit(input.tenantId, input.step, 'failed', input.error, tx);
      }));
    },

    /** Mirrors a pending deprovision deadline (a grace period) so the status API can show it. */
    async recordDeprovisionDeadline(input: { tenantId: string; deprovisionAt: string }): Promise<void> {
      return dbOnly('record deprovision deadline', async () => {
        await db.$executeRaw`UPDATE tenants SET metadata = metadata || jsonb_build_object('deprovisionAt', ${input.deprovisionAt}::text), updated_at = now() WHERE id = ${input.tenantId}::uuid`;
      });
    },

    async setTenantPlan(input: { tenantId: string; plan: string }): Promise<void> {
      return dbOnly('update tenant plan', async () => {
        plan(input.plan);
        await db.tenant.update({ where: { id: input.tenantId }, data: { plan: input.plan, lastError: null } });
        await audit(input.tenantId, 'changePlan', 'succeeded', `plan ${input.plan}`);
      });
    },

    // --- compensations and teardown: all tolerate "already gone" ------------------------------

    async uninstallApp(input: TenantRef): Promise<boolean> {
      const ctx = Context.current();
      return step(
        input.tenantId,
        'uninstallApp',
        () => helm.uninstall({ release: TENANT_RELEASE_NAME, namespace: input.namespace, timeoutSeconds: settings.helmTimeoutSeconds, signal: ctx.cancellationSignal }),
        true,
      );
    },

    async removeSecrets(input: TenantRef): Promise<boolean> {
      return step(
        input.tenantId,
        'removeSecrets',
        () => k8s(`delete Secret ${input.namespace}/${TENANT_SECRET_NAME}`, () =>
          kube.delete({ apiVersion: 'v1', kind: 'Secret', name: TENANT_SECRET_NAME, namespace: input.namespace })),
        true,
      );
    },

    async removeResourceLimits(input: TenantRef): Promise<void> {
      await step(
        input.tenantId,
        'removeResourceLimits',
        async () => {
          await k8s(`delete ResourceQuota in ${input.namespace}`, () =>
            kube.delete({ apiVersion: 'v1', kind: 'ResourceQuota', name: RESOURCE_QUOTA_NAME, namespace: input.namespace }));
          await k8s(`delete LimitRange in ${input.namespace}`, () =>
            kube.delete({ apiVersion: 'v1', kind: 'LimitRange', name: LIMIT_RANGE_NAME, namespace: input.namespace }));
        },
        true,
      );
    },

    async removeNetworkPolicies(input: TenantRef): Promise<void> {
      await step(
        input.tenantId,
        'removeNetworkPolicies',
        async () => {
          for (const name of Object.values(NETWORK_POLICY_NAMES)) {
            await k8s(`delete NetworkPolicy ${input.namespace}/${name}`, () =>
              kube.delete({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', name, namespace: input.namespace }));
          }
        },
        true,
      );
    },

    /** Deletes the tenant's namespace and waits until Kubernetes has really removed it. */
    async deleteNamespace(input: TenantRef): Promise<void> {
      const ctx = Context.current();
      await step(
        input.tenantId,
        'deleteNamespace',
        async () => {
          const ref = { apiVersion: 'v1', kind: 'Namespace', name: input.namespace };
          const existing = await k8s(`read Namespace ${input.namespace}`, () => kube.read<V1Namespace>(ref));
          if (!existing) return;
          const owner = existing.metadata?.labels?.[LABEL_TENANT_ID];
          if (owner !== input.tenantId) {
            throw ApplicationFailure.nonRetryable(
              `namespace ${input.namespace} is not labelled as tenant ${input.tenantId}'s (${LABEL_TENANT_ID}=${owner ?? 'unset'}); refusing to delete it`,
              'NamespaceConflict',
            );
          }
          if (!existing.metadata?.deletionTimestamp) {
            await k8s(`delete Namespace ${input.namespace}`, () => kube.delete(ref));
          }
          const started = Date.now();
          for (;;) {
            const ns = await k8s(`read Namespace ${input.namespace}`, () => kube.read<V1Namespace>(ref));
            if (!ns) return;
            ctx.heartbeat({ waitingForNamespaceGoneMs: Date.now() - started, phase: ns.status?.phase });
            await ctx.sleep(NAMESPACE_GONE_POLL_MS);
          }
        },
        true,
      );
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
