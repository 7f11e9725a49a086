/**
 * Activity proxies and their retry policies, and how a failure is told to a person. Activities are
 * imported as types only: the worker supplies the implementations.
 */
import { type ActivityOptions, ActivityFailure, ApplicationFailure, log, proxyActivities, proxyLocalActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { helmTaskQueue, type StepFailure } from '../contract';
import { RETIRED, retired } from './patches';

/** Failures that retrying cannot fix: the activity said so, or the input is wrong. */
export const NON_RETRYABLE = [
  'UnknownPlan',
  'InvalidTenant',
  'NamespaceConflict',
  'KubernetesRejected',
  'KubernetesForbidden',
  'KubernetesConflict',
  'HelmRejected',
];

const RETRY = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '30 seconds',
  maximumAttempts: 6,
  nonRetryableErrorTypes: NON_RETRYABLE,
};

/**
 * A local activity retries inside its workflow task while the backoff is at most this; a longer
 * wait becomes a durable timer, so an outage does not hold the workflow task (and the queries
 * waiting on it) open.
 */
const LOCAL_RETRY_THRESHOLD = '2 seconds';

type StepProxies = ReturnType<typeof proxyLocalActivities<Activities>>;

/** Local activity proxies, at the place the runs of earlier workers chose them by a patch. */
function local(proxies: StepProxies): Activities {
  return new Proxy({} as Activities, {
    get(_target, name: string) {
      retired(RETIRED.localQuickSteps);
      return proxies[name as keyof Activities];
    },
  });
}

/**
 * The quick steps (a few Kubernetes writes, one database statement) run as local activities: in
 * the worker that runs the workflow task, recorded in history as a marker per step, instead of a
 * round trip through the server's activity queue each. That is most of the server's work per
 * tenant. A worker that dies mid-step loses its workflow task, and the next worker runs the step
 * again after the workflow task timeout (10 s), where an activity task waited out its 1-minute
 * start-to-close.
 */
const QUICK: ActivityOptions = { startToCloseTimeout: '1 minute', retry: RETRY };
const quickTasks = proxyActivities<Activities>(QUICK);
export const quick = local(proxyLocalActivities<Activities>({ ...QUICK, localRetryThreshold: LOCAL_RETRY_THRESHOLD }));

/**
 * Quick steps whose answer must be in history before the next step acts on it, as activity tasks.
 * A local activity's result is recorded only when its workflow task completes: a worker that dies
 * later in the same task leaves it unrecorded, and the step runs again on the next worker. For
 * `inspectTenant` (what existed before this run) that second answer would count the namespace the
 * lost task created as pre-existing, and a later failure would leave it behind.
 */
export const recordedFirst = quickTasks;

// Helm waits for readiness (HELM_TIMEOUT_SECONDS, at most 10 minutes) and namespaces take a while
// to drain; both heartbeat, so a dead worker is noticed within the heartbeat timeout.
const SLOW = {
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { ...RETRY, maximumAttempts: 3 },
} as const;

/**
 * Slow activities run on their own task queue (see `helmTaskQueue`), so a long Helm wait never
 * holds a slot the quick steps need. Resolved at each call, inside the workflow: the queue comes
 * from the run's own task queue.
 */
export const slow: Activities = new Proxy({} as Activities, {
  get(_target, name: string) {
    retired(RETIRED.helmTaskQueue);
    const proxies = proxyActivities<Activities>({ ...SLOW, taskQueue: helmTaskQueue(workflowInfo().taskQueue) });
    return proxies[name as keyof Activities];
  },
});

/**
 * Activities that only touch PostgreSQL retry for as long as an outage lasts: "retries exhausted"
 * must never turn a database restart into a failed tenant. Only a final database error (schema,
 * constraint) or a business failure stops them.
 */
const DB: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', nonRetryableErrorTypes: [...NON_RETRYABLE, 'DatabaseRejected'] },
};
export const db = local(proxyLocalActivities<Activities>({ ...DB, localRetryThreshold: LOCAL_RETRY_THRESHOLD }));

/**
 * Failure types that mean "wait, this will pass", not "this change cannot work": the database is
 * down, or a Helm release is locked by a helm that may still be running (it is recovered once
 * the lock is older than Helm's worst case).
 */
const OUTAGE_TYPES = new Set(['DatabaseUnavailable', 'HelmLocked']);

/**
 * Runs an activity that writes the step log besides its real work: when its bounded retries run
 * out because PostgreSQL is down (or a Helm lock has not gone stale yet), that is waited out
 * (backoff capped at 30 s, a timer in history) and the activity runs again, instead of failing
 * the step.
 */
export async function outlast<T>(what: string, call: () => Promise<T>): Promise<T> {
  for (let waitMs = 5_000; ; waitMs = Math.min(waitMs * 2, 30_000)) {
    try {
      return await call();
    } catch (err) {
      const root = describeFailure(err, what);
      if (!root.type || !OUTAGE_TYPES.has(root.type)) throw err;
      log.warn('a dependency is down; waiting before running the step again', { step: what, type: root.type, waitMs });
      await sleep(waitMs);
    }
  }
}

/** The innermost cause of an activity failure: that is the message a person can act on. */
export function describeFailure(err: unknown, step: string): StepFailure {
  let cause: unknown = err;
  while (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  if (cause instanceof ApplicationFailure) return { step, message: cause.message, type: cause.type ?? undefined };
  if (cause instanceof Error) return { step, message: cause.message, type: cause.name };
  return { step, message: String(cause) };
}

export function formatError(failure: StepFailure, compensationErrors: StepFailure[]): string {
  const undo = compensationErrors.length
    ? `; cleanup also failed: ${compensationErrors.map((e) => `${e.step}: ${e.message}`).join('; ')}`
    : '';
  return `${failure.step} failed: ${failure.message}${undo}`;
}
