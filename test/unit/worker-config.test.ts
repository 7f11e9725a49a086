import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadWorkerConfig } from '../../src/config';
import { helmWorstCaseSeconds } from '../../src/helm/helm';

const valid = { DATABASE_URL: 'postgresql://app:pw@db.example:5432/tenants' };

describe('loadWorkerConfig', () => {
  it('applies the documented defaults', () => {
    expect(loadWorkerConfig(valid)).toMatchObject({
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      TASK_QUEUE: 'tenant-provisioning',
      HELM_BIN: 'helm',
      HELM_TIMEOUT_SECONDS: 300,
      NAMESPACE_PREFIX: 'tenant',
      INGRESS_NAMESPACE: 'ingress-nginx',
      WORKER_MAX_ACTIVITIES: 20,
      WORKER_MAX_HELM_ACTIVITIES: 10,
      WORKER_MAX_CACHED_WORKFLOWS: 100,
      WORKER_REUSE_V8_CONTEXT: true,
    });
    expect(loadWorkerConfig(valid).WORKER_METRICS_BIND).toBeUndefined();
  });

  it('reads the worker memory settings', () => {
    expect(loadWorkerConfig({ ...valid, WORKER_MAX_CACHED_WORKFLOWS: '0', WORKER_REUSE_V8_CONTEXT: 'false' })).toMatchObject({
      WORKER_MAX_CACHED_WORKFLOWS: 0,
      WORKER_REUSE_V8_CONTEXT: false,
    });
  });

  it('treats blank values as unset, as a deployment template renders them', () => {
    const config = loadWorkerConfig({ ...valid, NAMESPACE_PREFIX: '', HELM_TIMEOUT_SECONDS: ' ', WORKER_METRICS_BIND: '' });
    expect(config).toMatchObject({ NAMESPACE_PREFIX: 'tenant', HELM_TIMEOUT_SECONDS: 300 });
    expect(config.WORKER_METRICS_BIND).toBeUndefined();
  });

  it.each([
    ['DATABASE_URL', { DATABASE_URL: '' }],
    ['NAMESPACE_PREFIX', { NAMESPACE_PREFIX: 'Tenant_' }],
    ['HELM_TIMEOUT_SECONDS', { HELM_TIMEOUT_SECONDS: '5' }],
    // --atomic's worst case (2 x 421 + 60 s) would outlast the 15-minute activity timeout.
    ['HELM_TIMEOUT_SECONDS', { HELM_TIMEOUT_SECONDS: '421' }],
    ['WORKER_METRICS_BIND', { WORKER_METRICS_BIND: '9464' }],
    ['WORKER_MAX_HELM_ACTIVITIES', { WORKER_MAX_HELM_ACTIVITIES: '0' }],
    ['WORKER_MAX_CACHED_WORKFLOWS', { WORKER_MAX_CACHED_WORKFLOWS: '-1' }],
    ['WORKER_REUSE_V8_CONTEXT', { WORKER_REUSE_V8_CONTEXT: 'yes' }],
  ])('names %s when it is bad', (name, override) => {
    expect(() => loadWorkerConfig({ ...valid, ...override })).toThrow(ConfigError);
    expect(() => loadWorkerConfig({ ...valid, ...override })).toThrow(new RegExp(`^invalid configuration:\\n  ${name}: `));
  });
});

describe('Helm and shutdown deadlines', () => {
  it('the largest HELM_TIMEOUT_SECONDS still fits --atomic (install + rollback wait) in the 15-minute activity timeout', () => {
    const max = loadWorkerConfig({ ...valid, HELM_TIMEOUT_SECONDS: '420' }).HELM_TIMEOUT_SECONDS;
    expect(helmWorstCaseSeconds(max)).toBeLessThanOrEqual(15 * 60);
  });

  it("the chart's termination grace period outlasts the worker's own shutdown grace (Helm's worst case)", () => {
    const values = readFileSync(path.resolve(__dirname, '../../charts/provisioner/values.yaml'), 'utf8');
    // The worker's own key (the api has one too, with a much shorter grace).
    const worker = values.slice(values.indexOf('\nworker:\n'));
    const grace = Number(/^ {2}terminationGracePeriodSeconds: (\d+)$/m.exec(worker)?.[1]);
    const helmTimeout = loadWorkerConfig(valid).HELM_TIMEOUT_SECONDS;
    expect(grace).toBeGreaterThan(helmWorstCaseSeconds(helmTimeout));
  });
});
