import {
  FIELD_MANAGER,
  LABEL_MANAGED_BY,
  LABEL_PLAN,
  LABEL_TENANT_ID,
  MANAGED_BY,
  isLabelValue,
  tenantLabels,
} from '../../src/k8s/labels';
import { InvalidTenantIdError } from '../../src/naming';

const ID = '3f2c1a9e-8b7d-4c6e-9f01-23456789abcd';

describe('labels', () => {
  it('exports the agreed constants', () => {
    expect(MANAGED_BY).toBe('tenant-provisioner');
    expect(FIELD_MANAGER).toBe('tenant-provisioner');
    expect(LABEL_TENANT_ID).toBe('tenancy.dev/tenant-id');
    expect(LABEL_PLAN).toBe('tenancy.dev/plan');
    expect(LABEL_MANAGED_BY).toBe('app.kubernetes.io/managed-by');
  });

  it('builds tenant labels', () => {
    expect(tenantLabels(ID, 'pro')).toStrictEqual({
      'tenancy.dev/tenant-id': ID,
      'tenancy.dev/plan': 'pro',
      'app.kubernetes.io/managed-by': 'tenant-provisioner',
    });
  });

  it('normalises the tenant id so selectors match however the id was written', () => {
    expect(tenantLabels(ID.toUpperCase(), 'pro')[LABEL_TENANT_ID]).toBe(ID);
  });

  it('rejects an invalid tenant id', () => {
    expect(() => tenantLabels('tenant-1', 'pro')).toThrow(InvalidTenantIdError);
  });

  it.each(['', 'pro plan', '-pro', 'a'.repeat(64), 'pro/x'])('rejects the plan %j, which is not a label value', (plan) => {
    expect(() => tenantLabels(ID, plan)).toThrow(/Invalid plan id .* for label tenancy\.dev\/plan/);
  });

  it('knows what a label value is', () => {
    expect(isLabelValue('')).toBe(true);
    expect(isLabelValue('Pro_1.0-x')).toBe(true);
    expect(isLabelValue('a'.repeat(63))).toBe(true);
    expect(isLabelValue('a'.repeat(64))).toBe(false);
    expect(isLabelValue('_a')).toBe(false);
  });
});
