/**
 * ProvisionTenant: one workflow per tenant (id `tenant-<uuid>`), from the paid event to the end of
 * the tenant's life. It provisions the seed steps as a saga (`provisioning.ts`), then stays alive
 * as the tenant's lifecycle (`lifecycle.ts`), answering deprovision, plan change, suspend and
 * resume signals.
 *
 * Deterministic by construction: no I/O here, only activities (imported as types), timers and
 * signals. Every side effect is an idempotent activity, so a replayed or retried step is harmless.
 */
import type { ProvisionTenantInput, ProvisionTenantResult } from '../contract';
import { lifecycle } from './lifecycle';
import { provision } from './provisioning';
import { TenantState } from './state';

export async function provisionTenant(input: ProvisionTenantInput): Promise<ProvisionTenantResult> {
  const state = new TenantState(input);
  state.listen();
  if (!input.carried) {
    state.announce();
    await provision(state);
  }
  return lifecycle(state, input);
}
