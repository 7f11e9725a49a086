import { ConfigError, loadWorkerConfig } from '../../src/config';

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
    });
    expect(loadWorkerConfig(valid).WORKER_METRICS_BIND).toBeUndefined();
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
    ['WORKER_METRICS_BIND', { WORKER_METRICS_BIND: '9464' }],
  ])('names %s when it is bad', (name, override) => {
    expect(() => loadWorkerConfig({ ...valid, ...override })).toThrow(ConfigError);
    expect(() => loadWorkerConfig({ ...valid, ...override })).toThrow(new RegExp(`^invalid configuration:\\n  ${name}: `));
  });
});
