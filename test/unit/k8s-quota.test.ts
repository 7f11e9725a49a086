import { buildLimitRange, buildResourceQuota } from '../../src/k8s/quota';
import { DEFAULT_PLANS, type Plan } from '../../src/plans';

const ID = '3f2c1a9e-8b7d-4c6e-9f01-23456789abcd';
const NS = `tenant-${ID}`;

function defaultPlan(id: string): Plan {
  const plan = DEFAULT_PLANS.find((p) => p.id === id);
  if (!plan) throw new Error(`no default plan ${id}`);
  return plan;
}

describe('buildResourceQuota', () => {
  it('builds tenant-quota with every hard limit from the plan', () => {
    expect(buildResourceQuota({ namespace: NS, tenantId: ID, plan: defaultPlan('starter') })).toStrictEqual({
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: {
        name: 'tenant-quota',
        namespace: NS,
        labels: {
          'tenancy.dev/tenant-id': ID,
          'tenancy.dev/plan': 'starter',
          'app.kubernetes.io/managed-by': 'tenant-provisioner',
        },
      },
      spec: {
        hard: {
          'requests.cpu': '500m',
          'requests.memory': '512Mi',
          'limits.cpu': '1',
          'limits.memory': '1Gi',
          'requests.storage': '5Gi',
          persistentvolumeclaims: '2',
          pods: '10',
          services: '5',
          secrets: '20',
          configmaps: '10',
        },
      },
    });
  });

  it('follows the plan it is given', () => {
    const plan: Plan = structuredClone(defaultPlan('pro'));
    plan.id = 'custom';
    plan.quota = {
      requestsCpu: '3',
      requestsMemory: '3Gi',
      limitsCpu: '6',
      limitsMemory: '6Gi',
      requestsStorage: '60Gi',
      persistentVolumeClaims: 7,
      pods: 0,
      services: 11,
      secrets: 12,
      configMaps: 13,
    };
    const quota = buildResourceQuota({ namespace: NS, tenantId: ID, plan });
    expect(quota.metadata?.labels?.['tenancy.dev/plan']).toBe('custom');
    expect(quota.spec?.hard).toStrictEqual({
      'requests.cpu': '3',
      'requests.memory': '3Gi',
      'limits.cpu': '6',
      'limits.memory': '6Gi',
      'requests.storage': '60Gi',
      persistentvolumeclaims: '7',
      pods: '0',
      services: '11',
      secrets: '12',
      configmaps: '13',
    });
  });
});

describe('buildLimitRange', () => {
  it('builds tenant-limits with container defaults and maximums from the plan', () => {
    expect(buildLimitRange({ namespace: NS, tenantId: ID, plan: defaultPlan('pro') })).toStrictEqual({
      apiVersion: 'v1',
      kind: 'LimitRange',
      metadata: {
        name: 'tenant-limits',
        namespace: NS,
        labels: {
          'tenancy.dev/tenant-id': ID,
          'tenancy.dev/plan': 'pro',
          'app.kubernetes.io/managed-by': 'tenant-provisioner',
        },
      },
      spec: {
        limits: [
          {
            type: 'Container',
            // Serialised as "default" by the client library.
            _default: { cpu: '500m', memory: '512Mi' },
            defaultRequest: { cpu: '100m', memory: '128Mi' },
            max: { cpu: '2', memory: '4Gi' },
          },
        ],
      },
    });
  });

  it('follows the plan it is given', () => {
    const limits = buildLimitRange({ namespace: NS, tenantId: ID, plan: defaultPlan('enterprise') }).spec?.limits[0];
    expect(limits?._default).toStrictEqual({ cpu: '1', memory: '1Gi' });
    expect(limits?.defaultRequest).toStrictEqual({ cpu: '250m', memory: '256Mi' });
    expect(limits?.max).toStrictEqual({ cpu: '4', memory: '8Gi' });
  });
});
