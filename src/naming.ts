/**
 * Names derived from a tenant id. Everything here is a pure function of its inputs so that a
 * retried workflow or activity always targets the same namespace, release and workflow id.
 */

export const NAMESPACE_PREFIX_DEFAULT = 'tenant';

/** Helm release name of the per-tenant application, installed into the tenant namespace. */
export const TENANT_RELEASE_NAME = 'tenant-app';

/** Kubernetes rejects names longer than this for namespaces and other DNS-1123 labels. */
export const DNS1123_LABEL_MAX_LENGTH = 63;

const UUID_LENGTH = 36;

/** Longest prefix that still leaves room for `-<uuid>` inside a 63-character label. */
export const NAMESPACE_PREFIX_MAX_LENGTH = DNS1123_LABEL_MAX_LENGTH - 1 - UUID_LENGTH;

/**
 * A UUID of any version (and the nil/max UUIDs), either case: ids come from our own database and
 * from Stripe's ids by name, and the version nibble says nothing about whether the value is safe
 * to embed in a name. The one declaration of the pattern: tenant, user and request ids all use it.
 */
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const UUID_PATTERN = new RegExp(`^${UUID}$`, 'i');
const WORKFLOW_ID_PATTERN = new RegExp(`^tenant-(${UUID})$`, 'i');
const DNS1123_LABEL_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Quote user-supplied text for an error message without letting it flood the logs. */
function describeInput(value: unknown): string {
  if (typeof value !== 'string') return `a value of type ${value === null ? 'null' : typeof value}`;
  const shown = value.length > 80 ? `${value.slice(0, 80)}...` : value;
  return JSON.stringify(shown);
}

export class InvalidTenantIdError extends Error {
  override readonly name = 'InvalidTenantIdError';

  constructor(tenantId: unknown) {
    super(
      `Invalid tenant id ${describeInput(tenantId)}: expected a UUID ` +
        '(8-4-4-4-12 hexadecimal digits, e.g. "123e4567-e89b-12d3-a456-426614174000").',
    );
  }
}

export class InvalidNamespacePrefixError extends Error {
  override readonly name = 'InvalidNamespacePrefixError';

  constructor(prefix: unknown) {
    super(
      `Invalid namespace prefix ${describeInput(prefix)}: it must be a DNS-1123 label ` +
        '(lowercase letters, digits and "-", starting and ending with a letter or digit) of at most ' +
        `${NAMESPACE_PREFIX_MAX_LENGTH} characters, so that "<prefix>-<uuid>" fits in ` +
        `${DNS1123_LABEL_MAX_LENGTH} characters.`,
    );
  }
}

/** True when `s` is a valid RFC 1123 label as Kubernetes defines it (namespace names, etc.). */
export function isDns1123Label(s: string): boolean {
  return (
    typeof s === 'string' &&
    s.length >= 1 &&
    s.length <= DNS1123_LABEL_MAX_LENGTH &&
    DNS1123_LABEL_PATTERN.test(s)
  );
}

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_PATTERN.test(value);
}

/**
 * Validates a tenant id and returns its canonical lowercase form. The same tenant written in
 * upper and lower case must map to one namespace, one workflow and one set of labels.
 */
export function normalizeTenantId(tenantId: string): string {
  if (!isUuid(tenantId)) {
    throw new InvalidTenantIdError(tenantId);
  }
  return tenantId.toLowerCase();
}

/**
 * Namespace for a tenant. The full UUID is embedded (never hashed or truncated), so two
 * different tenants can never be given the same namespace.
 */
export function tenantNamespace(tenantId: string, prefix: string = NAMESPACE_PREFIX_DEFAULT): string {
  const id = normalizeTenantId(tenantId);
  if (!isDns1123Label(prefix) || prefix.length > NAMESPACE_PREFIX_MAX_LENGTH) {
    throw new InvalidNamespacePrefixError(prefix);
  }
  return `${prefix}-${id}`;
}

/**
 * Temporal workflow id for a tenant's provisioning. Deterministic so that Temporal's
 * workflow-id uniqueness deduplicates repeated triggers (e.g. redelivered Stripe events).
 */
export function workflowIdFor(tenantId: string): string {
  return `tenant-${normalizeTenantId(tenantId)}`;
}

/** The tenant a workflow id (`tenant-<uuid>`) belongs to, lowercase; undefined for any other id. */
export function tenantIdOfWorkflowId(workflowId: unknown): string | undefined {
  return typeof workflowId === 'string' ? WORKFLOW_ID_PATTERN.exec(workflowId)?.[1]?.toLowerCase() : undefined;
}

/**
 * Whether `namespace` is tenant `tenantId`'s own: `<prefix>-<tenant id>`, as assignNamespace names
 * it under any prefix. The tenant id is a UUID, so no other tenant's namespace ends in it.
 */
export function isOwnNamespace(tenantId: string, namespace: string): boolean {
  let id: string;
  try {
    id = normalizeTenantId(tenantId);
  } catch {
    return false;
  }
  const prefix = namespace.slice(0, -(id.length + 1));
  return namespace.endsWith(`-${id}`) && prefix.length > 0 && isDns1123Label(prefix) && isDns1123Label(namespace);
}
