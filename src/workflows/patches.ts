/**
 * Workflow changes whose old code path is gone. Runs started by the workers before them called
 * `patched(id)` and carry its marker; `deprecatePatch(id)`, at the place `patched` was, lets
 * those runs replay while new runs take the only path left. Delete an id and its calls once no
 * open run lists it in its `TemporalChangeVersion` search attribute (a deprecated marker does
 * not add it, and every run continues as new within its history limit).
 */
import { deprecatePatch } from '@temporalio/workflow';

export const RETIRED = {
  /** Backoff and conditions, owned-only compensation, cleanup runs: the start of every run. */
  lifecycleV2: 'lifecycle-v2',
  /** Quick and database steps as local activities: the first such step. */
  localQuickSteps: 'local-quick-steps',
  /** Slow activities on their own task queue: the first slow step. */
  helmTaskQueue: 'helm-task-queue',
  /** A retried lifecycle change first restores the isolation objects: the first retry. */
  healBeforeRetry: 'heal-before-retry',
} as const;

export function retired(id: (typeof RETIRED)[keyof typeof RETIRED]): void {
  deprecatePatch(id);
}
