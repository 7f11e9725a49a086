import { STRIPE_ID_NAMESPACE, isUuid, tenantIdForCustomer, tenantIdForRequest, tenantIdForSubscription, userIdForCustomer, uuidv5 } from '../../src/api/ids';

describe('uuidv5', () => {
  it('matches the RFC 9562 / Python uuid.uuid5 reference values', () => {
    const DNS = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';
    const URL = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';
    expect(uuidv5('www.example.com', DNS)).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
    expect(uuidv5('python.org', DNS)).toBe('886313e1-3b8a-5372-9b90-0c9aee199e5d');
    expect(uuidv5('http://python.org/', URL)).toBe('4c565f0d-3f5a-5890-b41b-20cf47701c5e');
  });

  it('sets version 5 and the RFC variant', () => {
    const id = uuidv5('anything', STRIPE_ID_NAMESPACE);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('refuses a namespace that is not a UUID', () => {
    expect(() => uuidv5('x', 'not-a-uuid')).toThrow(/namespace/);
  });
});

describe('ids derived from Stripe ids', () => {
  it('are stable, so redeliveries land on the same tenant and user', () => {
    expect(tenantIdForSubscription('sub_123')).toBe(tenantIdForSubscription('sub_123'));
    expect(tenantIdForCustomer('cus_123')).toBe(tenantIdForCustomer('cus_123'));
    expect(userIdForCustomer('cus_123')).toBe(userIdForCustomer('cus_123'));
    expect(tenantIdForRequest('u', 'k')).toBe(tenantIdForRequest('u', 'k'));
  });

  it('differ between subscriptions, customers, kinds and requests', () => {
    const ids = [
      tenantIdForSubscription('sub_1'),
      tenantIdForSubscription('sub_2'),
      tenantIdForCustomer('sub_1'),
      tenantIdForCustomer('cus_1'),
      userIdForCustomer('cus_1'),
      tenantIdForRequest('u', 'k1'),
      tenantIdForRequest('u', 'k2'),
    ];
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(isUuid(id)).toBe(true);
  });

  it('never change for a given Stripe id (existing tenants would be orphaned)', () => {
    expect(STRIPE_ID_NAMESPACE).toBe('3f0b6d2e-8c41-4a57-9e2b-5d7c1a9f4e60');
    expect(tenantIdForSubscription('sub_1NpXyZ2eZvKYlo2C')).toBe(uuidv5('stripe:subscription:sub_1NpXyZ2eZvKYlo2C', STRIPE_ID_NAMESPACE));
  });
});
