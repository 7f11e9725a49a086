import { randomUUID } from 'node:crypto';
import {
  InvalidNamespacePrefixError,
  InvalidTenantIdError,
  NAMESPACE_PREFIX_DEFAULT,
  TENANT_RELEASE_NAME,
  isDns1123Label,
  isOwnNamespace,
  isUuid,
  normalizeTenantId,
  tenantIdOfWorkflowId,
  tenantNamespace,
  workflowIdFor,
} from '../../src/naming';

const ID = '3f2c1a9e-8b7d-4c6e-9f01-23456789abcd';

describe('isDns1123Label', () => {
  it.each(['a', '0', 'tenant', 'tenant-1', 'a-b-c', '1abc', 'a'.repeat(63)])('accepts %j', (s) => {
    expect(isDns1123Label(s)).toBe(true);
  });

  it.each(['', 'A', 'Tenant', '-a', 'a-', 'a_b', 'a.b', 'a b', 'a'.repeat(64), 'ü', 'a\n'])('rejects %j', (s) => {
    expect(isDns1123Label(s)).toBe(false);
  });
});

describe('tenantNamespace', () => {
  it('is the default prefix followed by the tenant id', () => {
    expect(NAMESPACE_PREFIX_DEFAULT).toBe('tenant');
    expect(tenantNamespace(ID)).toBe(`tenant-${ID}`);
  });

  it('uses a custom prefix', () => {
    expect(tenantNamespace(ID, 'acme-prod')).toBe(`acme-prod-${ID}`);
  });

  it('normalises an uppercase uuid', () => {
    expect(tenantNamespace(ID.toUpperCase())).toBe(`tenant-${ID}`);
    expect(tenantNamespace('3F2C1A9E-8b7d-4C6E-9f01-23456789ABCD')).toBe(`tenant-${ID}`);
  });

  it('is a DNS-1123 label of at most 63 characters for many random uuids, even with the longest prefix', () => {
    const longest = 'p'.repeat(26);
    for (let i = 0; i < 500; i++) {
      const id = i % 2 === 0 ? randomUUID() : randomUUID().toUpperCase();
      for (const name of [tenantNamespace(id), tenantNamespace(id, longest)]) {
        expect(name.length).toBeLessThanOrEqual(63);
        expect(isDns1123Label(name)).toBe(true);
      }
    }
    expect(tenantNamespace(ID, longest)).toHaveLength(63);
  });

  it('gives distinct tenants distinct names', () => {
    const ids = Array.from({ length: 1000 }, () => randomUUID());
    const names = new Set(ids.map((id) => tenantNamespace(id)));
    expect(names.size).toBe(new Set(ids).size);
    // Ids differing in a single final digit must not collide (no truncation or hashing).
    expect(tenantNamespace('00000000-0000-4000-8000-000000000000')).not.toBe(
      tenantNamespace('00000000-0000-4000-8000-000000000001'),
    );
  });

  it('is deterministic', () => {
    expect(tenantNamespace(ID)).toBe(tenantNamespace(ID));
  });

  it.each([
    '00000000-0000-0000-0000-000000000000', // nil
    'ffffffff-ffff-ffff-ffff-ffffffffffff', // max
    'c232ab00-9414-11ec-b3c8-9e6bdeced846', // v1
    '5df41881-3aed-3515-88a7-2f4a814cf09e', // v3
    '2ed6657d-e927-568b-95e1-2665a8aea6a2', // v5
    '1ec9414c-232a-6b00-b3c8-9e6bdeced846', // v6
    '017f22e2-79b0-7cc3-98c4-dc0c0c07398f', // v7
  ])('accepts any uuid version: %s', (id) => {
    expect(tenantNamespace(id)).toBe(`tenant-${id}`);
  });

  it.each([
    '',
    'tenant',
    '3f2c1a9e8b7d4c6e9f0123456789abcd', // no dashes
    '{3f2c1a9e-8b7d-4c6e-9f01-23456789abcd}',
    '3f2c1a9e-8b7d-4c6e-9f01-23456789abc', // too short
    '3f2c1a9e-8b7d-4c6e-9f01-23456789abcde', // too long
    '3f2c1a9g-8b7d-4c6e-9f01-23456789abcd', // not hex
    ` ${ID}`,
    `${ID}\n`,
    '../../etc/passwd',
  ])('rejects the tenant id %j', (id) => {
    expect(() => tenantNamespace(id)).toThrow(InvalidTenantIdError);
    expect(() => tenantNamespace(id)).toThrow(`Invalid tenant id ${JSON.stringify(id)}: expected a UUID`);
  });

  it('rejects a non-string tenant id from untyped callers', () => {
    expect(() => tenantNamespace(undefined as unknown as string)).toThrow(InvalidTenantIdError);
  });

  it('shortens a huge tenant id in the error message', () => {
    let message = '';
    try {
      tenantNamespace('x'.repeat(10_000));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message.length).toBeLessThan(300);
  });

  it.each(['', 'Tenant', 'tenant_', '-tenant', 'tenant-', 'te.nant', 'p'.repeat(27)])('rejects the prefix %j', (prefix) => {
    expect(() => tenantNamespace(ID, prefix)).toThrow(InvalidNamespacePrefixError);
    expect(() => tenantNamespace(ID, prefix)).toThrow(/at most 26 characters/);
  });

  it('reports an invalid tenant id before an invalid prefix', () => {
    expect(() => tenantNamespace('nope', 'BAD')).toThrow(InvalidTenantIdError);
  });
});

describe('workflowIdFor', () => {
  it('is tenant-<lowercased uuid>', () => {
    expect(workflowIdFor(ID)).toBe(`tenant-${ID}`);
    expect(workflowIdFor(ID.toUpperCase())).toBe(`tenant-${ID}`);
  });

  it('rejects invalid tenant ids', () => {
    expect(() => workflowIdFor('not-a-uuid')).toThrow(InvalidTenantIdError);
  });
});

describe('normalizeTenantId', () => {
  it('lowercases valid ids and rejects others', () => {
    expect(normalizeTenantId(ID.toUpperCase())).toBe(ID);
    expect(() => normalizeTenantId('x')).toThrow(InvalidTenantIdError);
  });
});

describe('TENANT_RELEASE_NAME', () => {
  it('is a valid Helm release name', () => {
    expect(TENANT_RELEASE_NAME).toBe('tenant-app');
    expect(isDns1123Label(TENANT_RELEASE_NAME)).toBe(true);
  });
});

describe('isUuid and tenantIdOfWorkflowId', () => {
  it('accepts a UUID of any version in either case, and nothing else', () => {
    expect(isUuid(ID)).toBe(true);
    expect(isUuid(ID.toUpperCase())).toBe(true);
    for (const bad of [`${ID}x`, ` ${ID}`, ID.slice(1), ID.replace(/-/g, ''), 42, null, undefined]) expect(isUuid(bad)).toBe(false);
  });

  it('reads the tenant back from its workflow id, lowercase, and only from one', () => {
    expect(tenantIdOfWorkflowId(workflowIdFor(ID))).toBe(ID);
    expect(tenantIdOfWorkflowId(`tenant-${ID.toUpperCase()}`)).toBe(ID);
    for (const other of [ID, `tenant-${ID}-x`, `bench-${ID}`, 'tenant-', undefined, 7]) expect(tenantIdOfWorkflowId(other)).toBeUndefined();
  });
});

describe('isOwnNamespace', () => {
  const OTHER = '11111111-2222-4333-8444-555555555555';
  it("accepts the tenant's namespace under any valid prefix, in either case of its id", () => {
    expect(isOwnNamespace(ID, tenantNamespace(ID))).toBe(true);
    expect(isOwnNamespace(ID.toUpperCase(), `team-a-${ID}`)).toBe(true);
  });
  it.each([
    ['another tenant', `tenant-${OTHER}`],
    ['a system namespace', 'kube-system'],
    ['the bare id', ID],
    ['a longer name ending in the id of nothing', `-${ID}`],
    ['an upper-case namespace', `tenant-${ID.toUpperCase()}`],
    ['the id in the middle', `tenant-${ID}-x`],
  ])('refuses %s', (_what, namespace) => {
    expect(isOwnNamespace(ID, namespace)).toBe(false);
  });
  it('refuses anything for a tenant id that is not a UUID', () => {
    expect(isOwnNamespace('kube', 'tenant-kube')).toBe(false);
  });
});
