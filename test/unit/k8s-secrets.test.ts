import {
  TENANT_CREDENTIAL_KEYS,
  TENANT_SECRET_NAME,
  buildTenantSecret,
  generateTenantCredentials,
} from '../../src/k8s/secrets';

const ID = '3f2c1a9e-8b7d-4c6e-9f01-23456789abcd';
const NS = `tenant-${ID}`;

/** A deterministic stand-in for crypto.randomBytes: call n fills its buffer with byte n. */
function fakeRandom(): { random: (bytes: number) => Buffer; sizes: number[] } {
  const sizes: number[] = [];
  return {
    sizes,
    random: (bytes) => {
      sizes.push(bytes);
      return Buffer.alloc(bytes, sizes.length);
    },
  };
}

describe('generateTenantCredentials', () => {
  it('generates each credential as base64url of 32 fresh random bytes', () => {
    const { random, sizes } = fakeRandom();
    const credentials = generateTenantCredentials(random);
    expect(Object.keys(credentials)).toEqual(['DATABASE_PASSWORD', 'API_KEY', 'SESSION_SECRET']);
    expect(sizes).toEqual([32, 32, 32]);
    expect(credentials).toStrictEqual({
      DATABASE_PASSWORD: Buffer.alloc(32, 1).toString('base64url'),
      API_KEY: Buffer.alloc(32, 2).toString('base64url'),
      SESSION_SECRET: Buffer.alloc(32, 3).toString('base64url'),
    });
  });

  it('produces URL-safe values without padding', () => {
    const credentials = generateTenantCredentials((n) => Buffer.alloc(n, 0xff));
    for (const value of Object.values(credentials)) {
      expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(value, 'base64url')).toEqual(Buffer.alloc(32, 0xff));
    }
  });

  it('refuses a random source that returns too few bytes', () => {
    expect(() => generateTenantCredentials((n) => Buffer.alloc(n - 1, 7))).toThrow(
      'The random source returned 31 bytes for DATABASE_PASSWORD, expected a Buffer of 32 bytes',
    );
  });

  it('refuses a random source that does not return a Buffer', () => {
    expect(() => generateTenantCredentials(() => 'x'.repeat(32) as unknown as Buffer)).toThrow(/non-Buffer value/);
  });
});

describe('buildTenantSecret', () => {
  const credentials = generateTenantCredentials(fakeRandom().random);

  it('builds the full Opaque secret with base64-encoded data and no stringData', () => {
    const secret = buildTenantSecret({ namespace: NS, tenantId: ID, plan: 'pro', data: credentials });
    expect(secret).toStrictEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name: 'tenant-credentials',
        namespace: NS,
        labels: {
          'tenancy.dev/tenant-id': ID,
          'tenancy.dev/plan': 'pro',
          'app.kubernetes.io/managed-by': 'tenant-provisioner',
        },
        annotations: { 'tenancy.dev/generated-by': 'tenant-provisioner' },
      },
      data: {
        DATABASE_PASSWORD: Buffer.from(credentials.DATABASE_PASSWORD!).toString('base64'),
        API_KEY: Buffer.from(credentials.API_KEY!).toString('base64'),
        SESSION_SECRET: Buffer.from(credentials.SESSION_SECRET!).toString('base64'),
      },
    });
    expect(TENANT_SECRET_NAME).toBe('tenant-credentials');
    expect(secret).not.toHaveProperty('stringData');
  });

  it('stores data that decodes back to the generated values', () => {
    const secret = buildTenantSecret({ namespace: NS, tenantId: ID, plan: 'pro', data: credentials });
    const decoded = Object.fromEntries(
      Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]),
    );
    expect(decoded).toStrictEqual(credentials);
    expect(Object.keys(decoded)).toEqual([...TENANT_CREDENTIAL_KEYS]);
    // Encoded, not copied: the plain value must not appear as-is.
    expect(secret.data?.API_KEY).not.toBe(credentials.API_KEY);
  });

  it('encodes non-ASCII values as UTF-8', () => {
    const secret = buildTenantSecret({ namespace: NS, tenantId: ID, plan: 'pro', data: { NOTE: 'pässwörd ✓' } });
    expect(Buffer.from(secret.data!.NOTE!, 'base64').toString('utf8')).toBe('pässwörd ✓');
  });

  it('rejects an invalid key without revealing any value', () => {
    const data = { 'BAD KEY': 'super-secret-value-1', GOOD: 'super-secret-value-2' };
    let message = '';
    try {
      buildTenantSecret({ namespace: NS, tenantId: ID, plan: 'pro', data });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^Invalid Secret key "BAD KEY"/);
    expect(message).not.toContain('super-secret-value');
  });

  it('rejects a non-string value without revealing it', () => {
    const data = { TOKEN: 12345678 } as unknown as Record<string, string>;
    let message = '';
    try {
      buildTenantSecret({ namespace: NS, tenantId: ID, plan: 'pro', data });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe('The value of Secret key "TOKEN" must be a string, got number.');
    expect(message).not.toContain('12345678');
  });
});
