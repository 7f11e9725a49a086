/**
 * ApiDeps for building the apps in unit tests without any server behind them: the database URL
 * points nowhere and is never connected, Temporal and Stripe are never called.
 */
import pino from 'pino';
import type { ApiDeps } from '../../src/api/app';
import { createMetrics } from '../../src/api/metrics';
import { unconfiguredStripe } from '../../src/api/stripe-api';
import type { TenantWorkflows } from '../../src/api/temporal';
import { createDb } from '../../src/db/client';
import { loadPlanCatalogue } from '../../src/plans';

export function offlineApiDeps(overrides: Partial<ApiDeps> = {}): ApiDeps {
  return {
    db: createDb('postgresql://nobody@127.0.0.1:1/none'),
    workflows: {} as TenantWorkflows,
    plans: loadPlanCatalogue(),
    logger: pino({ level: 'silent' }),
    metrics: createMetrics({ defaultMetrics: false }),
    auth: { jwtSecret: 'x'.repeat(32), issuer: 'i', audience: 'a', clockToleranceSeconds: 0, maxAgeSeconds: 86_400, serviceTokens: ['y'.repeat(32)] },
    webhook: { secrets: ['whsec_x'], toleranceSeconds: 300, bodyLimit: '256kb', graceSeconds: 0, livemode: false, suspendStatuses: new Set(['unpaid', 'paused']), connectAccounts: new Set<string>() },
    stripe: unconfiguredStripe,
    statusQueryTimeoutMs: 100,
    readyTimeoutMs: 100,
    ...overrides,
  };
}
