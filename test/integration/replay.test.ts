/**
 * Replays recorded ProvisionTenant histories (test/histories/*.json) against today's workflow code.
 * A change that would break workflows already running in production fails here with a
 * DeterminismViolationError, before it is deployed.
 *
 * The histories are recorded from real runs on the Temporal server with mock activities:
 *   RECORD_HISTORIES=1 npx jest --selectProjects integration --testPathPatterns replay
 * records the scenarios that have no file yet (RECORD_HISTORIES=overwrite records all of them).
 * A change to the workflow that alters history goes behind a `patched()` while runs are in flight:
 * re-record with `overwrite`, and keep the histories of the code before it as `inflight-*.json`
 * (no scenario records those): they stand for executions that are still running somewhere, and
 * go with the patch's old branch once no such run is open (src/workflows/patches.ts).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import type { WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import {
  cancelDeprovisionSignal,
  changePlanSignal,
  deprovisionSignal,
  resumeSignal,
  statusQuery,
  suspendSignal,
  tenantWorkflowId,
  type ProvisionTenantInput,
} from '../../src/contract';
import type { provisionTenant } from '../../src/workflows';
import { env, eventually, newTenantId, uniqueTaskQueue, useTemporalClient, withWorker } from './helpers';
import { mockActivities, type Mocks } from './mock-activities';

const HISTORIES = path.resolve(__dirname, '../histories');
const run = promisify(execFile);
const workflowsPath = require.resolve('../../src/workflows');

type Scenario = (handle: WorkflowHandle<typeof provisionTenant>, acts: Mocks) => Promise<void>;

const untilStatus = async (handle: WorkflowHandle, status: string) => {
  await eventually(async () => (await handle.query(statusQuery)).status === status, 30_000, status);
};
/** Asks for another plan and waits until the workflow runs on it. */
const changePlan = async (handle: WorkflowHandle, plan: string) => {
  await handle.signal(changePlanSignal, { plan });
  await eventually(async () => (await handle.query(statusQuery)).plan === plan, 30_000, `plan ${plan}`);
};
const settled = (handle: WorkflowHandle) => handle.result().then(() => undefined, () => undefined);

interface ScenarioSpec {
  prepare?: (acts: Mocks) => void;
  input?: Partial<ProvisionTenantInput>;
  /** Started by signalWithStart with a deprovision signal (as a deprovision before payment, or a cleanup run). */
  startWithDeprovision?: boolean;
  /** Record the first run of the chain (one that continued as new) rather than the latest. */
  recordFirstRun?: boolean;
  run: Scenario;
}

const BACKOFF = { lifecycleBackoff: { initialSeconds: 1, maxSeconds: 2 } };

const scenarios: Record<string, ScenarioSpec> = {
  'provision-then-deprovision': {
    run: async (h) => {
      await untilStatus(h, 'active');
      await changePlan(h, 'pro');
      await changePlan(h, 'starter');
      await h.signal(deprovisionSignal, { reason: 'recorded' });
      await settled(h);
    },
  },
  // A final Helm failure at provisioning: the saga undoes the run.
  'helm-failure-saga': {
    prepare: (acts) => acts.deployApp.mockRejectedValue(ApplicationFailure.nonRetryable('chart rejected', 'HelmRejected')),
    run: (h) => settled(h),
  },
  'step-retried': {
    prepare: (acts) => acts.applyNetworkPolicies.mockRejectedValueOnce(ApplicationFailure.retryable('connection reset', 'KubernetesUnavailable')),
    run: async (h) => {
      await untilStatus(h, 'active');
      await h.signal(deprovisionSignal, { reason: 'recorded' });
      await settled(h);
    },
  },
  'plan-suspend-resume': {
    run: async (h) => {
      await untilStatus(h, 'active');
      await changePlan(h, 'pro');
      await h.signal(suspendSignal, { reason: 'payment failed' });
      await untilStatus(h, 'suspended');
      await h.signal(resumeSignal);
      await untilStatus(h, 'active');
      await h.signal(deprovisionSignal, { graceSeconds: 1 });
      await settled(h);
    },
  },
  'grace-period-deprovision': {
    run: async (h) => {
      await untilStatus(h, 'active');
      await h.signal(deprovisionSignal, { reason: 'subscription deleted', graceSeconds: 2 });
      await settled(h);
    },
  },
  // A short interval, so one reconciliation runs.
  'periodic-reconcile': {
    input: { reconcileIntervalSeconds: 1 },
    run: async (h, acts) => {
      await untilStatus(h, 'active');
      await eventually(() => Promise.resolve(acts.applyNetworkPolicies.mock.calls.length >= 2), 20_000, 'a reconciliation');
      await h.signal(deprovisionSignal, {});
      await settled(h);
    },
  },
  'deprovision-before-start': {
    startWithDeprovision: true,
    run: async (h) => {
      await settled(h);
    },
  },
  'cleanup-run': {
    input: { cleanup: { reason: 'recorded' } },
    startWithDeprovision: true,
    prepare: (acts) => acts.deleteNamespace.mockRejectedValueOnce(ApplicationFailure.nonRetryable('forbidden', 'KubernetesForbidden')),
    run: (h) => settled(h),
  },
  // A re-run over an existing tenant fails at Helm: the tenant stays live and the change is retried.
  'failed-rerun-kept-live': {
    input: { ...BACKOFF, reconcileIntervalSeconds: 3600 },
    prepare: (acts) => {
      acts.inspectTenant.mockResolvedValue({ namespace: true, secret: true, release: true });
      acts.deployApp.mockRejectedValueOnce(ApplicationFailure.nonRetryable('chart rejected', 'HelmRejected'));
    },
    run: async (h, acts) => {
      await eventually(() => Promise.resolve(acts.reconcileApp.mock.calls.length > 0), 20_000, 'the reconciliation retry');
      await eventually(async () => !(await h.query(statusQuery)).condition, 20_000, 'the condition cleared');
      await h.signal(deprovisionSignal, {});
      await settled(h);
    },
  },
  // A suspend that fails backs off and recovers; a pending deprovision is cancelled, then carried out.
  'suspend-backoff-recover': {
    input: { ...BACKOFF, reconcileIntervalSeconds: 2 },
    prepare: (acts) => {
      acts.deployApp.mockImplementation((i) =>
        i.suspended && acts.deployApp.mock.calls.filter(([c]) => c.suspended).length <= 3
          ? Promise.reject(ApplicationFailure.nonRetryable('namespace not found', 'HelmRejected'))
          : Promise.resolve({ revision: 2 }),
      );
    },
    run: async (h) => {
      await untilStatus(h, 'active');
      await h.signal(suspendSignal, {});
      await untilStatus(h, 'suspended');
      await h.signal(deprovisionSignal, { graceSeconds: 30 });
      await eventually(async () => !!(await h.query(statusQuery)).deprovisionAt, 10_000, 'a pending deprovision');
      await h.signal(cancelDeprovisionSignal);
      await eventually(async () => !(await h.query(statusQuery)).deprovisionAt, 10_000, 'the deprovision cancelled');
      await h.signal(deprovisionSignal, {});
      await settled(h);
    },
  },
  // A retried change first restores the isolation objects.
  'heal-before-retry': {
    input: BACKOFF,
    prepare: (acts) => {
      acts.deployApp.mockImplementation((i) =>
        i.suspended && acts.deployApp.mock.calls.filter(([c]) => c.suspended).length <= 2
          ? Promise.reject(ApplicationFailure.nonRetryable('namespace not found', 'HelmRejected'))
          : Promise.resolve({ revision: 2 }),
      );
    },
    run: async (h) => {
      await untilStatus(h, 'active');
      await h.signal(suspendSignal, {});
      await untilStatus(h, 'suspended');
      await h.signal(deprovisionSignal, {});
      await settled(h);
    },
  },
  'continue-as-new-while-failing': {
    input: { ...BACKOFF, maxHistoryEvents: 60 },
    recordFirstRun: true,
    prepare: (acts) => {
      acts.deployApp.mockImplementation((i) => (i.suspended ? Promise.reject(ApplicationFailure.nonRetryable('namespace not found', 'HelmRejected')) : Promise.resolve({ revision: 1 })));
    },
    run: async (h) => {
      const first = (await h.describe()).runId;
      await untilStatus(h, 'active');
      await h.signal(suspendSignal, {});
      await eventually(async () => (await h.describe()).runId !== first, 60_000, 'a continued run');
      await h.terminate('recorded');
    },
  },
};

function historyFiles(): string[] {
  try {
    return readdirSync(HISTORIES).filter((f) => f.endsWith('.json')).sort();
  } catch {
    return [];
  }
}

describe('replay of recorded ProvisionTenant histories', () => {
  const recording = process.env.RECORD_HISTORIES;
  if (recording === '1' || recording === 'overwrite') {
    const temporal = useTemporalClient();

    const toRecord = Object.keys(scenarios).filter((name) => recording === 'overwrite' || !historyFiles().includes(`${name}.json`));
    (toRecord.length ? it.each(toRecord) : it.skip.each(['(all recorded)']))('records %s', async (name) => {
      const taskQueue = uniqueTaskQueue(`record-${name}`);
      const acts = mockActivities([]);
      scenarios[name]!.prepare?.(acts);
      const tenantId = newTenantId();
      const history = await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
        const spec = scenarios[name]!;
        const options = { taskQueue, workflowId: tenantWorkflowId(tenantId), args: [{ tenantId, plan: 'starter', ...spec.input }] as [ProvisionTenantInput] };
        const handle =
          spec.startWithDeprovision
            ? await temporal.client.workflow.signalWithStart<typeof provisionTenant, [{ reason?: string }]>('provisionTenant', {
                ...options,
                signal: deprovisionSignal,
                signalArgs: [{ reason: 'deleted before paid' }],
              })
            : await temporal.client.workflow.start<typeof provisionTenant>('provisionTenant', options);
        const firstRunId = (await handle.describe()).runId;
        await spec.run(handle, acts);
        // The CLI's JSON is the format `temporal workflow show` gives operators, and replay reads it.
        const { stdout } = await run('temporal', [
          'workflow', 'show', '--workflow-id', handle.workflowId,
          ...(spec.recordFirstRun ? ['--run-id', firstRunId] : []),
          '--address', env('TEMPORAL_ADDRESS'), '--output', 'json',
        ]);
        return stdout;
      });
      mkdirSync(HISTORIES, { recursive: true });
      writeFileSync(path.join(HISTORIES, `${name}.json`), history);
    });
  }

  it('has recorded histories to replay', () => {
    expect(historyFiles().length).toBeGreaterThanOrEqual(Object.keys(scenarios).length);
  });

  const files = historyFiles();
  (files.length ? it.each(files) : it.skip.each(['(none recorded)']))('replays %s without a determinism violation', async (file) => {
    const history: unknown = JSON.parse(readFileSync(path.join(HISTORIES, file), 'utf8'));
    await expect(Worker.runReplayHistory({ workflowsPath }, history, file)).resolves.toBeUndefined();
  });
});
