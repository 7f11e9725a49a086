/**
 * Activity proxies and their retry policies, and how a failure is told to a person. Activities are
 * imported as types only: the worker supplies the implementations.
 */
import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { StepFailure } from '../contract';

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

export const quick = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: RETRY });

// Helm waits for readiness (HELM_TIMEOUT_SECONDS, at most 10 minutes) and namespaces take a while
// to drain; both heartbeat, so a dead worker is noticed within the heartbeat timeout.
export const slow = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { ...RETRY, maximumAttempts: 3 },
});

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
