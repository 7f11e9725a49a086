/**
 * The payload codec: AES-256-GCM over every payload the service hands Temporal (workflow inputs,
 * signals, queries, activity arguments and results, summaries), so Temporal's database, its Web UI
 * and anyone who reads history with a client of their own see ciphertext. Workflow ids and search
 * attributes are not payloads the codec sees: they stay readable (and carry no secret).
 *
 * Keys come as a ring (TEMPORAL_PAYLOAD_KEYS=`id:base64key,…`): encrypt with the first, decrypt
 * with whichever the payload names in its metadata, so a key is rotated by putting the new one
 * first and dropping the old once no running workflow carries it.
 *
 * In the default mode a plaintext payload passes through on decode: recorded histories replay, and
 * workflows started before the keys were set keep running. In `required` mode it is refused, so a
 * client without the key that reaches Temporal's port cannot start a workflow that does anything:
 * the worker fails the workflow task before the workflow code runs.
 *
 * The payload is sealed as JSON (metadata and data in base64) rather than as its protobuf bytes, so
 * that this module needs nothing beyond what the SDK exports.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { ConfigError } from '../config';
import type { TemporalSettings } from './settings';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const CIPHER = 'AES256GCM';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

export interface PayloadKey {
  id: string;
  key: Buffer;
}

/** Parses `id:base64key,…`; a bad entry is named by its position and id, never by its key. */
export function parsePayloadKeys(value: string): PayloadKey[] {
  const fail = (why: string): never => {
    throw new ConfigError(`invalid Temporal configuration:\n  TEMPORAL_PAYLOAD_KEYS: ${why}`);
  };
  const keys = value.split(',').map((entry, i) => {
    const colon = entry.indexOf(':');
    const id = entry.slice(0, colon).trim();
    const b64 = entry.slice(colon + 1).trim();
    if (colon < 0 || !/^[A-Za-z0-9_.-]{1,64}$/.test(id)) fail(`value ${i + 1} of the list: must be id:base64key (id of letters, digits, "_", "-", ".")`);
    const key = Buffer.from(b64, 'base64');
    if (key.length !== 32 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) fail(`key "${id}" (value ${i + 1}): must be 32 bytes in base64 (e.g. openssl rand -base64 32)`);
    return { id, key };
  });
  const ids = new Set(keys.map((k) => k.id));
  if (ids.size !== keys.length) fail('every key needs its own id');
  return keys;
}

export class PayloadEncryptionError extends Error {
  override name = 'PayloadEncryptionError';
}

export class AesGcmCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;

  constructor(
    private readonly keys: readonly PayloadKey[],
    private readonly required: boolean,
  ) {
    if (!keys.length) throw new Error('AesGcmCodec needs at least one key');
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  // Synchronous work in a promise: a throw becomes the rejection the SDK expects.
  encode(payloads: Payload[]): Promise<Payload[]> {
    return new Promise((resolve) => resolve(payloads.map((p) => this.seal(p))));
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    return new Promise((resolve) => resolve(payloads.map((p) => this.open(p))));
  }

  private seal(p: Payload): Payload {
    const { id, key } = this.keys[0]!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const plain = Buffer.from(JSON.stringify(toJson(p)));
    const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return { metadata: { encoding: utf8(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8(id), 'encryption-cipher': utf8(CIPHER) }, data: sealed };
  }

  private open(p: Payload): Payload {
    if (text(p.metadata?.encoding) !== ENCRYPTED_ENCODING) {
      if (this.required) {
        throw new PayloadEncryptionError(
          'refused a plaintext payload: TEMPORAL_PAYLOAD_ENCRYPTION=required, and only payloads encrypted with a key of TEMPORAL_PAYLOAD_KEYS are accepted (was this started by a client without the codec?)',
        );
      }
      return p;
    }
    const id = text(p.metadata?.[KEY_ID_METADATA]) ?? '';
    const key = this.byId.get(id);
    if (!key) throw new PayloadEncryptionError(`payload encrypted with key "${id}", which is not in TEMPORAL_PAYLOAD_KEYS`);
    const data = Buffer.from(p.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadEncryptionError(`payload encrypted with key "${id}" is truncated`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      return fromJson(JSON.parse(plain.toString('utf8')) as SealedPayload);
    } catch {
      throw new PayloadEncryptionError(`payload encrypted with key "${id}" does not decrypt with it (altered, or another key of the same id)`);
    }
  }
}

interface SealedPayload {
  metadata: Record<string, string>;
  data: string;
}

function toJson(p: Payload): SealedPayload {
  const metadata = Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}

function fromJson(s: SealedPayload): Payload {
  const metadata = Object.fromEntries(Object.entries(s.metadata).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))]));
  return { metadata, data: new Uint8Array(Buffer.from(s.data, 'base64')) };
}

/** The codec the settings ask for, or undefined (nothing changes) when no key is set. */
export function payloadCodec(settings: Pick<TemporalSettings, 'TEMPORAL_PAYLOAD_KEYS' | 'TEMPORAL_PAYLOAD_ENCRYPTION'>): AesGcmCodec | undefined {
  const required = settings.TEMPORAL_PAYLOAD_ENCRYPTION === 'required';
  if (!settings.TEMPORAL_PAYLOAD_KEYS) {
    if (required) throw new ConfigError('invalid Temporal configuration:\n  TEMPORAL_PAYLOAD_ENCRYPTION: is required, but TEMPORAL_PAYLOAD_KEYS is not set');
    return undefined;
  }
  return new AesGcmCodec(parsePayloadKeys(settings.TEMPORAL_PAYLOAD_KEYS), required);
}

/** The data converter for clients and workers: the codec, when there is one. */
export function temporalDataConverter(settings: Pick<TemporalSettings, 'TEMPORAL_PAYLOAD_KEYS' | 'TEMPORAL_PAYLOAD_ENCRYPTION'>): DataConverter | undefined {
  const codec = payloadCodec(settings);
  return codec ? { payloadCodecs: [codec] } : undefined;
}
