import { readFileSync } from 'node:fs';
import path from 'node:path';
import { tenantChartValues } from '../../src/activities/app';
import { ConfigError, loadWorkerConfig, parseImageReference } from '../../src/config';
import { loadPlanCatalogue } from '../../src/plans';
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

describe('the tenant app settings', () => {
  it('reads TENANT_IMAGE, TENANT_UDP_PORT and TENANT_POD_PLACEMENT', () => {
    const placement = { nodeSelector: { 'tenant-provisioner.dev/node-kind': 'real' }, tolerations: [{ key: 'tenant-provisioner.dev/real-node', operator: 'Equal', value: 'true', effect: 'NoSchedule' }] };
    const config = loadWorkerConfig({
      ...valid,
      TENANT_IMAGE: 'localhost/tenant-provisioner/tenant-app:dev',
      TENANT_UDP_PORT: '8081',
      TENANT_POD_PLACEMENT: JSON.stringify(placement),
    });
    expect(config).toMatchObject({ TENANT_IMAGE: 'localhost/tenant-provisioner/tenant-app:dev', TENANT_UDP_PORT: 8081, TENANT_POD_PLACEMENT: placement });
  });

  it.each([
    ['TENANT_IMAGE', { TENANT_IMAGE: 'Not An Image' }],
    ['TENANT_UDP_PORT', { TENANT_UDP_PORT: '70000' }],
    ['TENANT_POD_PLACEMENT', { TENANT_POD_PLACEMENT: '{"nodeSelector":' }],
    ['TENANT_POD_PLACEMENT', { TENANT_POD_PLACEMENT: '{"nodeName":"n1"}' }],
    ['TENANT_POD_PLACEMENT', { TENANT_POD_PLACEMENT: '{"tolerations":[{"effect":"Sometimes"}]}' }],
  ])('names %s when it is bad', (name, override) => {
    expect(() => loadWorkerConfig({ ...valid, ...override })).toThrow(new RegExp(`^invalid configuration:\\n  ${name}: `));
  });

  it.each([
    ['localhost/tenant-provisioner/tenant-app:dev', { repository: 'localhost/tenant-provisioner/tenant-app', tag: 'dev' }],
    ['registry.example:5000/team/app', { repository: 'registry.example:5000/team/app', tag: 'latest' }],
    ['registry.example:5000/app:1.2', { repository: 'registry.example:5000/app', tag: '1.2' }],
    [`app@sha256:${'a'.repeat(64)}`, { repository: 'app', digest: `sha256:${'a'.repeat(64)}` }],
  ])('splits %s into the chart values', (ref, want) => {
    expect(parseImageReference(ref)).toEqual(want);
  });

  it('reads the cluster ranges and the ingress controller selector', () => {
    expect(loadWorkerConfig(valid)).toMatchObject({
      CLUSTER_POD_CIDRS: ['10.244.0.0/16'],
      CLUSTER_SERVICE_CIDRS: ['10.96.0.0/12'],
      CLUSTER_NODE_CIDRS: [],
      INGRESS_POD_SELECTOR: { 'app.kubernetes.io/name': 'ingress-nginx' },
    });
    expect(
      loadWorkerConfig({ ...valid, CLUSTER_POD_CIDRS: '10.88.0.0/16, 10.89.0.0/16', CLUSTER_NODE_CIDRS: '198.51.100.0/24', INGRESS_POD_SELECTOR: 'app=edge,tier=front' }),
    ).toMatchObject({ CLUSTER_POD_CIDRS: ['10.88.0.0/16', '10.89.0.0/16'], CLUSTER_NODE_CIDRS: ['198.51.100.0/24'], INGRESS_POD_SELECTOR: { app: 'edge', tier: 'front' } });
    expect(() => loadWorkerConfig({ ...valid, CLUSTER_SERVICE_CIDRS: '10.96.0.0' })).toThrow(/^invalid configuration:\n {2}CLUSTER_SERVICE_CIDRS/);
    expect(() => loadWorkerConfig({ ...valid, INGRESS_POD_SELECTOR: 'app' })).toThrow(/^invalid configuration:\n {2}INGRESS_POD_SELECTOR: must be label=value/);
  });

  it('passes only the settings that are set to the tenant chart', () => {
    const plan = loadPlanCatalogue().get('starter');
    const bare = tenantChartValues('t1', plan, false);
    expect(bare).not.toHaveProperty('image');
    expect(bare).not.toHaveProperty('udpPort');
    expect(bare).not.toHaveProperty('nodeSelector');
    const set = tenantChartValues('t1', plan, false, {
      image: { repository: 'localhost/app', tag: 'dev' },
      udpPort: 8081,
      placement: { nodeSelector: { kind: 'real' }, tolerations: [{ key: 'k', operator: 'Exists' }] },
    });
    expect(set).toMatchObject({ image: { repository: 'localhost/app', tag: 'dev' }, udpPort: 8081, nodeSelector: { kind: 'real' }, tolerations: [{ key: 'k', operator: 'Exists' }] });
  });
});
