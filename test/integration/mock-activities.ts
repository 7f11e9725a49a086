import type { Activities } from '../../src/activities';

export type Mocks = { [K in keyof Activities]: jest.Mock<ReturnType<Activities[K]>, Parameters<Activities[K]>> };

const PLAN_RANK: Record<string, number> = { starter: 0, pro: 1, enterprise: 2 };

/** Each activity resolves like the real one would; `calls` records the order they ran in. */
export function mockActivities(calls: string[]): Mocks {
  const fn = <K extends keyof Activities>(name: K, impl: (...args: Parameters<Activities[K]>) => ReturnType<Activities[K]>) =>
    jest.fn((...args: Parameters<Activities[K]>) => {
      calls.push(name);
      return impl(...args);
    });
  return {
    recordTenant: fn('recordTenant', () => Promise.resolve()),
    assignNamespace: fn('assignNamespace', ({ tenantId }) => Promise.resolve(`tenant-${tenantId}`)),
    ensureNamespace: fn('ensureNamespace', () => Promise.resolve()),
    applyNetworkPolicies: fn('applyNetworkPolicies', () => Promise.resolve()),
    applyResourceLimits: fn('applyResourceLimits', () => Promise.resolve()),
    ensureSecrets: fn('ensureSecrets', () => Promise.resolve({ secretName: 'tenant-credentials', created: true })),
    deployApp: fn('deployApp', () => Promise.resolve({ revision: 1 })),
    verifyIsolation: fn('verifyIsolation', () => Promise.resolve({ status: 'off' as const })),
    setTenantStatus: fn('setTenantStatus', () => Promise.resolve()),
    recordTenantError: fn('recordTenantError', () => Promise.resolve()),
    setTenantPlan: fn('setTenantPlan', () => Promise.resolve()),
    recordDeprovisionDeadline: fn('recordDeprovisionDeadline', () => Promise.resolve()),
    uninstallApp: fn('uninstallApp', () => Promise.resolve(true)),
    removeSecrets: fn('removeSecrets', () => Promise.resolve(true)),
    removeResourceLimits: fn('removeResourceLimits', () => Promise.resolve()),
    removeNetworkPolicies: fn('removeNetworkPolicies', () => Promise.resolve()),
    deleteNamespace: fn('deleteNamespace', () => Promise.resolve()),
    recordTenantCondition: fn('recordTenantCondition', () => Promise.resolve()),
    planChangeOrder: fn('planChangeOrder', ({ from, to }) => Promise.resolve(PLAN_RANK[to]! < PLAN_RANK[from]! ? 'app-first' : 'limits-first')),
    reconcileApp: fn('reconcileApp', () => Promise.resolve({ action: 'unchanged' as const })),
    inspectTenant: fn('inspectTenant', () => Promise.resolve({ namespace: false, secret: false, release: false })),
    findTenantNamespaces: fn('findTenantNamespaces', ({ tenantId }) => Promise.resolve([`tenant-${tenantId}`])),
  };
}
