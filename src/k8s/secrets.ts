import type { V1Secret } from '@kubernetes/client-node';
import { tenantLabels } from './labels';

export const TENANT_SECRET_NAME = 'tenant-credentials';

export const ANNOTATION_GENERATED_BY = 'tenancy.dev/generated-by';

/** Names of the generated credentials, in the order they are generated. */
export const TENANT_CREDENTIAL_KEYS = Object.freeze(['DATABASE_PASSWORD', 'API_KEY', 'SESSION_SECRET'] as const);

/** 256 bits per credential. */
export const CREDENTIAL_BYTES = 32;

// What the API server accepts as a key in Secret.data.
const SECRET_KEY_PATTERN = /^[-._a-zA-Z0-9]+$/;
const SECRET_KEY_MAX_LENGTH = 253;

/**
 * Fresh credentials for a tenant, each the base64url encoding of 32 random bytes (URL-, shell- and
 * connection-string-safe). The source of randomness is injected, normally `crypto.randomBytes`,
 * so that this stays a pure function under test.
 */
export function generateTenantCredentials(random: (bytes: number) => Buffer): Record<string, string> {
  const credentials: Record<string, string> = {};
  for (const key of TENANT_CREDENTIAL_KEYS) {
    const bytes = random(CREDENTIAL_BYTES);
    // A short buffer would silently weaken the credential; the message states sizes only.
    if (!Buffer.isBuffer(bytes) || bytes.length !== CREDENTIAL_BYTES) {
      throw new Error(
        `The random source returned ${Buffer.isBuffer(bytes) ? `${bytes.length} bytes` : 'a non-Buffer value'} ` +
          `for ${key}, expected a Buffer of ${CREDENTIAL_BYTES} bytes: pass crypto.randomBytes.`,
      );
    }
    credentials[key] = bytes.toString('base64url');
  }
  return credentials;
}

/**
 * The tenant's credentials Secret. Values go base64-encoded into `data` rather than `stringData`:
 * `stringData` is write-only and merged into `data` by the API server, so under server-side apply
 * the applied and live objects would never match and every re-apply would look like a change.
 * Values are never included in error messages.
 */
export function buildTenantSecret(input: {
  namespace: string;
  tenantId: string;
  plan: string;
  data: Record<string, string>;
}): V1Secret {
  const data: Record<string, string> = {};
  for (const [key, value] of Object.entries(input.data)) {
    if (!SECRET_KEY_PATTERN.test(key) || key.length > SECRET_KEY_MAX_LENGTH) {
      throw new Error(
        `Invalid Secret key ${JSON.stringify(key.slice(0, 80))}: keys must be 1-${SECRET_KEY_MAX_LENGTH} ` +
          'characters of letters, digits, "-", "_" or ".".',
      );
    }
    if (typeof value !== 'string') {
      throw new Error(`The value of Secret key ${JSON.stringify(key)} must be a string, got ${typeof value}.`);
    }
    data[key] = Buffer.from(value, 'utf8').toString('base64');
  }

  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: TENANT_SECRET_NAME,
      namespace: input.namespace,
      labels: tenantLabels(input.tenantId, input.plan),
      annotations: { [ANNOTATION_GENERATED_BY]: 'tenant-provisioner' },
    },
    data,
  };
}
