/**
 * Deterministic ids for what Stripe tells us about. A redelivered or concurrently delivered event
 * must land on the same user, the same tenant and therefore the same workflow (`tenant-<uuid>`), so
 * these ids are name-based UUIDs (version 5, RFC 9562 section 5.5) of Stripe's own ids.
 */
import { createHash } from 'node:crypto';
import { isUuid } from '../naming';

/**
 * The namespace of every name below. Changing it maps every customer and subscription to new
 * tenants: never change it once a tenant exists.
 */
export const STRIPE_ID_NAMESPACE = '3f0b6d2e-8c41-4a57-9e2b-5d7c1a9f4e60';

export { isUuid };

/** UUID version 5: SHA-1 of namespace and name, with the version and variant bits set. */
export function uuidv5(name: string, namespace: string): string {
  if (!isUuid(namespace)) throw new Error(`uuidv5: namespace ${JSON.stringify(namespace)} is not a UUID`);
  const bytes = createHash('sha1').update(Buffer.from(namespace.replace(/-/g, ''), 'hex')).update(name, 'utf8').digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** One tenant per Stripe subscription. */
export function tenantIdForSubscription(subscriptionId: string): string {
  return uuidv5(`stripe:subscription:${subscriptionId}`, STRIPE_ID_NAMESPACE);
}

/** One tenant per customer, for payments that belong to no subscription. */
export function tenantIdForCustomer(customerId: string): string {
  return uuidv5(`stripe:customer:${customerId}`, STRIPE_ID_NAMESPACE);
}

/** Id of a user row the webhook creates for a customer it has not seen (existing rows keep theirs). */
export function userIdForCustomer(customerId: string): string {
  return uuidv5(`stripe:user:${customerId}`, STRIPE_ID_NAMESPACE);
}

/** Tenant id for an internal provision request without one: stable across retries of that request. */
export function tenantIdForRequest(userId: string, idempotencyKey: string): string {
  return uuidv5(`api:provision:${userId}:${idempotencyKey}`, STRIPE_ID_NAMESPACE);
}
