/**
 * A generic saga: each step registers how to undo itself, and a final failure undoes them newest
 * first. A failing compensation is recorded and the others still run, so one stuck undo never
 * hides the original error nor leaves the rest in place.
 */
import { CancellationScope } from '@temporalio/workflow';

export interface CompensationFailure<K extends string> {
  step: K;
  error: unknown;
}

export class Saga<K extends string> {
  private readonly compensations: Array<{ step: K; undo: () => Promise<unknown> }> = [];

  /** Registers the undo of `step`; the newest registered runs first. */
  add(step: K, undo: () => Promise<unknown>): void {
    this.compensations.unshift({ step, undo });
  }

  get size(): number {
    return this.compensations.length;
  }

  /**
   * Runs every registered compensation, newest first, even while the workflow is being cancelled
   * (an undo interrupted by the cancellation it answers would leave things half-built).
   * `before` runs ahead of each one (to show it as the current step), `done` after each that worked.
   */
  async compensate(hooks: { before?: (step: K) => void; done?: (step: K) => void } = {}): Promise<CompensationFailure<K>[]> {
    const failures: CompensationFailure<K>[] = [];
    await CancellationScope.nonCancellable(async () => {
      for (const c of this.compensations) {
        hooks.before?.(c.step);
        try {
          await c.undo();
          hooks.done?.(c.step);
        } catch (error) {
          failures.push({ step: c.step, error });
        }
      }
    });
    return failures;
  }
}
