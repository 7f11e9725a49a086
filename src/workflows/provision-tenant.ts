/**
 * ProvisionTenant: one workflow per tenant (id `tenant-<uuid>`), from the paid event to the end of
 * the tenant's life. It provisions the seed steps as a saga (`provisioning.ts`), then stays alive
 * as the tenant's lifecycle (`lifecycle.ts`), answering deprovision, plan change, suspend, resume
 * and cancelDeprovision signals. A cleanup run (`input.cleanup`) only tears down.
 *
 * Deterministic by construction: no I/O here, only activities (imported as types), timers and
 * signals. Every side effect is an idempotent activity, so a replayed or retried step is harmless.
 */
import type { ProvisionTenantInput, ProvisionTenantResult } from '../contract';
import { Lifecycle } from './lifecycle';
import { RETIRED, retired } from './patches';
import { provision } from './provisioning';
import { TenantState } from './state';

export async function provisionTenant(input: ProvisionTenantInput): Promise<ProvisionTenantResult> {
  retired(RETIRED.lifecycleV2);
  const state = new TenantState(input);
  state.listen();
  if (input.cleanup && !input.carried) {
    // Nothing to provision: tear down whatever is labelled as the tenant's.
    state.announce();
    state.deprovisionReason = state.deprovisionReason ?? input.cleanup.reason ?? 'cleanup';
    if (!state.deprovisionRequested) {
      state.deprovisionRequested = true;
      state.deprovisionNotBefore = Date.now();
    }
    return new Lifecycle(state, input).run();
  }
  if (input.carried) return new Lifecycle(state, input).run();
  state.announce();
  const result = await provision(state);
  const lifecycle = new Lifecycle(state, input);
  if (result.outcome === 'kept-live') await lifecycle.keptLive(result.failure);
  return lifecycle.run();
}
