/**
 * The API's only door to Temporal: start-or-signal a tenant's lifecycle workflow, signal it, query
 * it, and check that the server answers. Every call has a deadline. Outcomes that are part of the
 * business ("no such workflow", "it already finished") come back as values; anything else is a
 * DependencyError, which the API turns into 503 so that the caller (Stripe) retries.
 */
import type { Client, Connection } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import {
  SEARCH_ATTRIBUTES,
  cancelDeprovisionSignal,
  changePlanSignal,
  deprovisionSignal,
  resumeSignal,
  statusQuery,
  suspendSignal,
  tenantWorkflowId,
  type DeprovisionRequest,
  type TenantProgress,
} from '../contract';
import type { provisionTenant } from '../workflows';
import { DependencyError } from './problem';

export type StartSignal =
  | { signal: 'resume' }
  | { signal: 'suspend'; reason?: string }
  | { signal: 'deprovision'; request: DeprovisionRequest };

export interface StartRequest {
  tenantId: string;
  plan: string;
  userId: string;
  customerId?: string;
  start: StartSignal;
  /**
   * What to do when the tenant's previous run has closed: `failed-only` starts a new run only after
   * a failed one; `always` starts one after any closed run; `never` starts nothing.
   */
  reuse: 'failed-only' | 'always' | 'never';
}

export type SignalRequest =
  | { signal: 'resume' }
  | { signal: 'suspend'; reason?: string }
  | { signal: 'changePlan'; plan: string }
  | { signal: 'deprovision'; request: DeprovisionRequest }
  | { signal: 'cancelDeprovision' };

export interface CleanupRequest {
  tenantId: string;
  /** The tenant's plan as PostgreSQL knows it (the cleanup run records nothing new with it). */
  plan: string;
  userId?: string;
  request: DeprovisionRequest;
}

export interface TenantWorkflows {
  /** signalWithStart: signals the running workflow, or starts one with the signal queued first. */
  start(req: StartRequest): Promise<{ result: 'signaled'; runId: string } | { result: 'closed' }>;
  /**
   * Deprovisions a tenant whatever state its workflow is in: signals the running run, or starts a
   * cleanup run (a new run of the tenant's workflow, same id) after a failed or terminated one.
   */
  cleanup(req: CleanupRequest): Promise<{ runId: string }>;
  /** Signals the running workflow; `not-running` when there is none. */
  signal(tenantId: string, req: SignalRequest): Promise<'signaled' | 'not-running'>;
  /** The live status query, or undefined when the workflow is not running or does not answer in time. */
  query(tenantId: string, timeoutMs: number): Promise<TenantProgress | undefined>;
  /** Throws when the Temporal frontend does not answer within `timeoutMs`. */
  ping(timeoutMs: number): Promise<void>;
  /** Status of the tenant's latest run (RUNNING, FAILED, COMPLETED, …), or undefined when there is none. */
  runStatus(tenantId: string): Promise<string | undefined>;
}

export interface TenantWorkflowsOptions {
  client: Client;
  connection: Connection;
  taskQueue: string;
  timeoutMs: number;
}

const REUSE = { 'failed-only': 'ALLOW_DUPLICATE_FAILED_ONLY', always: 'ALLOW_DUPLICATE', never: 'REJECT_DUPLICATE' } as const;

export function createTenantWorkflows(options: TenantWorkflowsOptions): TenantWorkflows {
  const { client, connection, taskQueue, timeoutMs } = options;
  const withDeadline = <T>(ms: number, fn: () => Promise<T>) => connection.withDeadline(Date.now() + ms, fn);

  async function guarded<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(timeoutMs, fn);
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError || err instanceof WorkflowNotFoundError) throw err;
      throw new DependencyError('temporal', `Temporal call failed: ${what}`, { cause: err });
    }
  }

  return {
    async start(req) {
      const workflowId = tenantWorkflowId(req.tenantId);
      const common = {
        taskQueue,
        workflowId,
        args: [{ tenantId: req.tenantId, plan: req.plan, userId: req.userId, ...(req.customerId ? { customerId: req.customerId } : {}) }] as Parameters<typeof provisionTenant>,
        workflowIdReusePolicy: REUSE[req.reuse],
        workflowIdConflictPolicy: 'USE_EXISTING' as const,
        typedSearchAttributes: [
          { key: SEARCH_ATTRIBUTES.tenantId, value: req.tenantId },
          { key: SEARCH_ATTRIBUTES.plan, value: req.plan },
          { key: SEARCH_ATTRIBUTES.status, value: 'provisioning' },
          ...(req.customerId ? [{ key: SEARCH_ATTRIBUTES.customerId, value: req.customerId }] : []),
        ],
        staticSummary: `Tenant ${req.tenantId} (plan ${req.plan})${req.customerId ? ` for Stripe customer ${req.customerId}` : ''}`,
      };
      try {
        const s = req.start;
        const handle = await guarded(`signalWithStart ${workflowId}`, () => {
          switch (s.signal) {
            case 'resume':
              return client.workflow.signalWithStart<typeof provisionTenant, []>('provisionTenant', { ...common, signal: resumeSignal, signalArgs: [] });
            case 'suspend':
              return client.workflow.signalWithStart<typeof provisionTenant, [{ reason?: string }]>('provisionTenant', {
                ...common,
                signal: suspendSignal,
                signalArgs: [{ reason: s.reason }],
              });
            case 'deprovision':
              return client.workflow.signalWithStart<typeof provisionTenant, [DeprovisionRequest]>('provisionTenant', {
                ...common,
                signal: deprovisionSignal,
                signalArgs: [s.request],
              });
          }
        });
        return { result: 'signaled', runId: handle.signaledRunId };
      } catch (err) {
        // The reuse policy refused a new run after a closed one: the tenant's lifecycle is over.
        if (err instanceof WorkflowExecutionAlreadyStartedError) return { result: 'closed' };
        throw err;
      }
    },

    async cleanup(req) {
      const workflowId = tenantWorkflowId(req.tenantId);
      const reason = req.request.reason;
      // One workflow id per tenant, so a cleanup run can never race a provisioning run: if one is
      // running, signalWithStart only signals it.
      const handle = await guarded(`signalWithStart (cleanup) ${workflowId}`, () =>
        client.workflow.signalWithStart<typeof provisionTenant, [DeprovisionRequest]>('provisionTenant', {
          taskQueue,
          workflowId,
          args: [{ tenantId: req.tenantId, plan: req.plan, ...(req.userId ? { userId: req.userId } : {}), cleanup: { ...(reason ? { reason } : {}) } }],
          workflowIdReusePolicy: 'ALLOW_DUPLICATE',
          workflowIdConflictPolicy: 'USE_EXISTING',
          signal: deprovisionSignal,
          signalArgs: [req.request],
          typedSearchAttributes: [
            { key: SEARCH_ATTRIBUTES.tenantId, value: req.tenantId },
            { key: SEARCH_ATTRIBUTES.plan, value: req.plan },
            { key: SEARCH_ATTRIBUTES.status, value: 'deprovisioning' },
          ],
          staticSummary: `Cleanup of tenant ${req.tenantId}${reason ? `: ${reason}` : ''}`,
        }),
      );
      return { runId: handle.signaledRunId };
    },

    async signal(tenantId, req) {
      const handle = client.workflow.getHandle(tenantWorkflowId(tenantId));
      try {
        await guarded(`signal ${req.signal} to ${handle.workflowId}`, () => {
          switch (req.signal) {
            case 'resume':
              return handle.signal(resumeSignal);
            case 'suspend':
              return handle.signal(suspendSignal, { reason: req.reason });
            case 'changePlan':
              return handle.signal(changePlanSignal, { plan: req.plan });
            case 'deprovision':
              return handle.signal(deprovisionSignal, req.request);
            case 'cancelDeprovision':
              return handle.signal(cancelDeprovisionSignal);
          }
        });
        return 'signaled';
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return 'not-running';
        throw err;
      }
    },

    async query(tenantId, ms) {
      const handle = client.workflow.getHandle(tenantWorkflowId(tenantId));
      try {
        return await withDeadline(ms, () => handle.query(statusQuery));
      } catch {
        return undefined; // not running, no worker, or too slow: PostgreSQL's mirror answers instead
      }
    },

    async ping(ms) {
      await withDeadline(ms, () => connection.workflowService.getSystemInfo({}));
    },

    async runStatus(tenantId) {
      const handle = client.workflow.getHandle(tenantWorkflowId(tenantId));
      try {
        return (await guarded(`describe ${handle.workflowId}`, () => handle.describe())).status.name;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      }
    },
  };
}
