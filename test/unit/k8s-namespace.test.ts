import { buildNamespace } from '../../src/k8s/namespace';
import { tenantNamespace } from '../../src/naming';

const ID = '3f2c1a9e-8b7d-4c6e-9f01-23456789abcd';

describe('buildNamespace', () => {
  it('builds the full namespace object with tenant and Pod Security Admission labels', () => {
    expect(buildNamespace({ name: tenantNamespace(ID), tenantId: ID, plan: 'starter' })).toStrictEqual({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: `tenant-${ID}`,
        labels: {
          'tenancy.dev/tenant-id': ID,
          'tenancy.dev/plan': 'starter',
          'app.kubernetes.io/managed-by': 'tenant-provisioner',
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
          'pod-security.kubernetes.io/audit': 'restricted',
          'pod-security.kubernetes.io/audit-version': 'latest',
          'pod-security.kubernetes.io/warn': 'restricted',
          'pod-security.kubernetes.io/warn-version': 'latest',
        },
      },
    });
  });

  it('carries the plan it is given', () => {
    const ns = buildNamespace({ name: 'tenant-x', tenantId: ID, plan: 'enterprise' });
    expect(ns.metadata?.labels?.['tenancy.dev/plan']).toBe('enterprise');
  });

  it('returns a fresh object each time, so callers cannot corrupt shared labels', () => {
    const a = buildNamespace({ name: 'tenant-x', tenantId: ID, plan: 'pro' });
    a.metadata!.labels!['pod-security.kubernetes.io/enforce'] = 'privileged';
    const b = buildNamespace({ name: 'tenant-x', tenantId: ID, plan: 'pro' });
    expect(b.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it.each(['', 'Tenant-X', 'tenant_x', 'a'.repeat(64)])('rejects the namespace name %j', (name) => {
    expect(() => buildNamespace({ name, tenantId: ID, plan: 'pro' })).toThrow(/Invalid namespace name/);
  });

  it('rejects an invalid tenant id', () => {
    expect(() => buildNamespace({ name: 'tenant-x', tenantId: 'x', plan: 'pro' })).toThrow(/Invalid tenant id/);
  });
});
