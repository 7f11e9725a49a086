/**
 * The settings of the connection to Temporal, shared by every process that reaches it (worker,
 * API, bench, tests). The names are the ones the Temporal SDK's environment configuration and the
 * `temporal` CLI read, so one set of variables serves the service and an operator's shell alike.
 * Only the shape is checked here; src/temporal/connection.ts reads the files and checks that they
 * agree, at start-up, before anything connects.
 */
import { z } from 'zod';

const path = z.string().min(1);

export const temporalEnv = {
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  /** `on`/`off`; unset: on as soon as any TLS file, a server name or an API key is set. */
  TEMPORAL_TLS: z.enum(['on', 'off'], { error: 'must be on or off' }).optional(),
  /** PEM CA bundle that signed the server's certificate; unset: the system's roots. */
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.optional(),
  /** PEM client certificate and its private key, for mTLS: both or neither. */
  TEMPORAL_TLS_CLIENT_CERT_PATH: path.optional(),
  TEMPORAL_TLS_CLIENT_KEY_PATH: path.optional(),
  /** The name the server's certificate must carry, when it is not the host of TEMPORAL_ADDRESS. */
  TEMPORAL_TLS_SERVER_NAME: z.string().regex(/^[A-Za-z0-9.-]{1,253}$/, 'must be a DNS name').optional(),
  /** Sent as `Authorization: Bearer <key>` on every call (Temporal Cloud API keys, or a proxy that checks them). */
  TEMPORAL_API_KEY: z.string().min(8, 'must be at least 8 characters').optional(),
  /**
   * Keys of the payload codec, `id:base64key,…` (AES-256: 32 bytes each): payloads are encrypted
   * with the first and decrypted with any. Unset: payloads travel as they are.
   */
  TEMPORAL_PAYLOAD_KEYS: z.string().optional(),
  /** `required`: a plaintext payload is refused (the worker fails the task instead of acting on it). */
  TEMPORAL_PAYLOAD_ENCRYPTION: z.enum(['optional', 'required'], { error: 'must be optional or required' }).default('optional'),
};

export const temporalSchema = z.object(temporalEnv);

export type TemporalSettings = z.infer<typeof temporalSchema>;
