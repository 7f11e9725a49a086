/**
 * Structured logs: secrets never reach a line (by field and inside free text), the Temporal
 * Runtime logger bridge keeps the SDK's fields and adds the tenant id, and activity log lines carry
 * tenant, workflow and run ids, with an outcome line and business metrics per attempt.
 */
import { Writable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Context } from '@temporalio/activity';
import { REDACTED, createLogger, scrub, temporalLogger } from '../../src/logging';
import { activityObservability, createWorkerMetrics } from '../../src/observability';

function capture(level: 'trace' | 'debug' | 'info' = 'info') {
  const lines: Record<string, unknown>[] = [];
  let raw = '';
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      raw += chunk.toString();
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger({ service: 'test', level, destination });
  return { logger, lines, raw: () => raw };
}

const SECRETS = {
  password: 'hunter2-the-db-password',
  serviceToken: 'svc_0123456789abcdef0123456789abcdef',
  jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl',
  webhook: 'whsec_abcdef0123456789',
  stripeKey: 'sk_live_0123456789abcdef',
  secretValue: 'c3VwZXItc2VjcmV0LXZhbHVl',
};

describe('redaction', () => {
  it('masks secret fields at any of the first two levels and inside messages and errors', () => {
    const { logger, lines, raw } = capture();
    logger.info(
      {
        password: SECRETS.password,
        DATABASE_URL: `postgresql://app:${SECRETS.password}@db:5432/tenants`,
        headers: { authorization: `Bearer ${SECRETS.jwt}`, 'stripe-signature': `t=1,v1=${SECRETS.webhook}` },
        request: { token: SECRETS.serviceToken, apiKey: SECRETS.stripeKey },
        secret: { data: { password: SECRETS.secretValue } },
        tenantId: 'kept',
      },
      'calling with Bearer %s',
      SECRETS.jwt,
    );
    logger.error({ err: new Error(`connect failed: postgresql://app:${SECRETS.password}@db:5432/x (key ${SECRETS.stripeKey}, ${SECRETS.webhook})`) }, 'database down');
    logger.warn(`token=${SECRETS.serviceToken} rejected`);

    for (const value of Object.values(SECRETS)) expect(raw()).not.toContain(value);
    expect(lines[0]).toMatchObject({ level: 'info', service: 'test', password: REDACTED, DATABASE_URL: REDACTED, tenantId: 'kept', headers: { authorization: REDACTED } });
    expect(lines[0]!.msg).toBe(`calling with Bearer ${REDACTED}`);
    expect((lines[1]!.err as { message: string }).message).toBe(`connect failed: postgresql://app:${REDACTED}@db:5432/x (key sk_live_${REDACTED}, whsec_${REDACTED})`);
    expect(lines[2]!.msg).toBe(`token=${REDACTED} rejected`);
  });

  it('scrubs free text but leaves ordinary text alone', () => {
    expect(scrub('helm upgrade --install tenant-app in tenant-1 failed: timed out')).toBe('helm upgrade --install tenant-app in tenant-1 failed: timed out');
    expect(scrub('https://user:pw@example.com/x and http://example.com/y')).toBe(`https://user:${REDACTED}@example.com/x and http://example.com/y`);
  });

  it('honours the level', () => {
    const { logger, lines } = capture();
    logger.debug('hidden');
    logger.info('shown');
    expect(lines.map((l) => l.msg)).toEqual(['shown']);
  });
});

describe('Temporal Runtime logger bridge', () => {
  it('keeps the SDK fields, adds the tenant id from the workflow id and drops symbol keys', () => {
    const { logger, lines } = capture('debug');
    const bridge = temporalLogger(logger);
    const tenantId = '0b0e0d57-5a1c-4b0e-9d2c-6f1e1f3a8a11';
    bridge.info('Workflow started', { sdkComponent: 'workflow', workflowId: `tenant-${tenantId}`, runId: 'run-1', [Symbol('ts')]: 1n });
    bridge.log('WARN', 'core says', { sdkComponent: 'core', timestamp: 123n });
    bridge.trace('too fine');
    expect(lines).toEqual([
      expect.objectContaining({ level: 'info', msg: 'Workflow started', workflowId: `tenant-${tenantId}`, runId: 'run-1', tenantId, sdkComponent: 'workflow' }),
      expect.objectContaining({ level: 'warn', msg: 'core says', timestamp: '123' }),
    ]);
  });
});

describe('activity observability', () => {
  const tenantId = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
  const info = { workflowExecution: { workflowId: `tenant-${tenantId}`, runId: 'run-42' }, activityType: 'setTenantStatus', attempt: 2 };

  it('puts tenant, workflow and run ids on every activity line (the SDK\'s own too) and counts outcomes', async () => {
    const { logger, lines, raw } = capture('debug');
    const metrics = createWorkerMetrics({ defaultMetrics: false });
    const env = new MockActivityEnvironment(info, { logger: temporalLogger(logger), interceptors: [activityObservability(metrics)] });

    await env.run(async (input: { tenantId: string; status: string; step: string }) => {
      Context.current().log.info('doing it', { step: input.step });
      await Promise.resolve();
    }, { tenantId, status: 'active', step: 'markActive' });
    const failing = env.run(async () => {
      await Promise.resolve();
      throw ApplicationFailure.nonRetryable(`cannot reach postgresql://app:${SECRETS.password}@db/x`, 'DatabaseUnavailable');
    });
    await expect(failing).rejects.toThrow(/cannot reach/);

    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const line of lines) expect(line).toMatchObject({ tenantId, workflowId: `tenant-${tenantId}`, runId: 'run-42', activityType: 'setTenantStatus' });
    expect(lines.map((l) => l.msg)).toEqual(['Activity started', 'doing it', 'step completed', 'Activity completed', 'Activity started', 'Activity failed']);
    expect(lines[2]).toMatchObject({ level: 'info', step: 'setTenantStatus' });
    expect(typeof lines[2]!.durationMs).toBe('number');
    expect(lines[5]).toMatchObject({ level: 'warn', err: { message: `cannot reach postgresql://app:${REDACTED}@db/x` } });
    expect(raw()).not.toContain(SECRETS.password);

    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^tenant_provisioner_provisions_succeeded_total 1$/m);
    expect(text).toMatch(/^tenant_provisioner_step_failures_total\{step="setTenantStatus",type="DatabaseUnavailable"\} 1$/m);
    expect(text).toMatch(/^tenant_provisioner_step_duration_seconds_count\{step="setTenantStatus",outcome="succeeded"\} 1$/m);
  });
});
