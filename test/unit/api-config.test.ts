import { ConfigError, loadApiConfig } from '../../src/api/config';

const valid = {
  DATABASE_URL: 'postgresql://app:pw@db.example:5432/tenants',
  STRIPE_WEBHOOK_SECRET: 'whsec_abc123',
  JWT_SECRET: 'j'.repeat(32),
  JWT_ISSUER: 'https://auth.example',
  JWT_AUDIENCE: 'tenant-provisioner',
  SERVICE_TOKEN: 's'.repeat(32),
};

describe('loadApiConfig', () => {
  it('applies the documented defaults', () => {
    expect(loadApiConfig(valid)).toMatchObject({
      PORT: 8080,
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      TEMPORAL_NAMESPACE: 'default',
      TASK_QUEUE: 'tenant-provisioning',
      STRIPE_WEBHOOK_TOLERANCE_SECONDS: 300,
      WEBHOOK_BODY_LIMIT: '256kb',
      DEPROVISION_GRACE_SECONDS: 7 * 86_400,
      JWT_CLOCK_TOLERANCE_SECONDS: 5,
      JWT_MAX_AGE_SECONDS: 86_400,
    });
  });

  it('binds both listeners to loopback unless told otherwise', () => {
    expect(loadApiConfig(valid)).toMatchObject({ HOST: '127.0.0.1', ADMIN_HOST: '127.0.0.1' });
  });

  it('accepts comma-separated service tokens and webhook secrets (a rotation)', () => {
    const config = loadApiConfig({ ...valid, SERVICE_TOKEN: `${'s'.repeat(32)},${'t'.repeat(32)}`, STRIPE_WEBHOOK_SECRET: 'whsec_new, whsec_old' });
    expect(config.SERVICE_TOKEN).toEqual(['s'.repeat(32), 't'.repeat(32)]);
    expect(config.STRIPE_WEBHOOK_SECRET).toEqual(['whsec_new', 'whsec_old']);
    expect(loadApiConfig(valid)).toMatchObject({ SERVICE_TOKEN: ['s'.repeat(32)], STRIPE_WEBHOOK_SECRET: ['whsec_abc123'] });
  });

  it('reads the Connect allow-list (none by default)', () => {
    expect(loadApiConfig(valid).STRIPE_CONNECT_ACCOUNTS).toEqual(new Set());
    expect(loadApiConfig({ ...valid, STRIPE_CONNECT_ACCOUNTS: 'acct_1,acct_2' }).STRIPE_CONNECT_ACCOUNTS).toEqual(new Set(['acct_1', 'acct_2']));
    expect(() => loadApiConfig({ ...valid, STRIPE_CONNECT_ACCOUNTS: 'acct_1,cus_2' })).toThrow(/STRIPE_CONNECT_ACCOUNTS: /);
  });

  it('coerces numbers and treats blank values as unset', () => {
    expect(loadApiConfig({ ...valid, PORT: '9000', DEPROVISION_GRACE_SECONDS: '0', TASK_QUEUE: '  ' })).toMatchObject({ PORT: 9000, DEPROVISION_GRACE_SECONDS: 0, TASK_QUEUE: 'tenant-provisioning' });
  });

  it.each([
    ['DATABASE_URL', { DATABASE_URL: undefined }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://x' }],
    ['STRIPE_WEBHOOK_SECRET', { STRIPE_WEBHOOK_SECRET: 'sk_test_swapped' }],
    ['JWT_SECRET', { JWT_SECRET: 'short' }],
    ['JWT_ISSUER', { JWT_ISSUER: undefined }],
    ['JWT_AUDIENCE', { JWT_AUDIENCE: '' }],
    ['SERVICE_TOKEN', { SERVICE_TOKEN: 'password' }],
    ['SERVICE_TOKEN', { SERVICE_TOKEN: `${'s'.repeat(32)} with spaces` }],
    ['SERVICE_TOKEN', { SERVICE_TOKEN: `${'s'.repeat(32)},short` }],
    ['STRIPE_WEBHOOK_SECRET', { STRIPE_WEBHOOK_SECRET: 'whsec_new,sk_test_old' }],
    ['PORT', { PORT: '70000' }],
    ['DEPROVISION_GRACE_SECONDS', { DEPROVISION_GRACE_SECONDS: '-1' }],
    ['STRIPE_API_KEY', { STRIPE_API_KEY: 'pk_live_publishable' }],
  ])('fails fast naming %s', (name, patch) => {
    let error: unknown;
    try {
      loadApiConfig({ ...valid, ...patch });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(new RegExp(`^  ${name}: `, 'm'));
  });

  it('never prints the values of secrets', () => {
    try {
      loadApiConfig({ ...valid, JWT_SECRET: 'tooshort-secret-value', SERVICE_TOKEN: 'another-short-one' });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect((err as Error).message).not.toMatch(/tooshort-secret-value|another-short-one/);
    }
  });
});
