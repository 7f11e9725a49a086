import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { ConfigError } from '../../src/config';
import { AesGcmCodec, ENCRYPTED_ENCODING, parsePayloadKeys, payloadCodec } from '../../src/temporal/codec';

const b64 = () => randomBytes(32).toString('base64');
const [k1, k2] = [b64(), b64()];
const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? []).toString();

describe('the AES-256-GCM payload codec', () => {
  const input = defaultPayloadConverter.toPayload({ tenantId: 'a1b2c3', plan: 'enterprise', customerId: 'cus_secret' });

  it('seals a payload so that neither its data nor its metadata is readable, and opens it again', async () => {
    const codec = payloadCodec({ TEMPORAL_PAYLOAD_KEYS: `k1:${k1}`, TEMPORAL_PAYLOAD_ENCRYPTION: 'optional' })!;
    const [sealed] = await codec.encode([input]);
    expect(text(sealed!.metadata!.encoding)).toBe(ENCRYPTED_ENCODING);
    expect(text(sealed!.metadata!['encryption-key-id'])).toBe('k1');
    expect(text(sealed!.data)).not.toMatch(/a1b2c3|enterprise|cus_secret|json\/plain/);
    const [opened] = await codec.decode([sealed!]);
    expect(defaultPayloadConverter.fromPayload(opened!)).toEqual({ tenantId: 'a1b2c3', plan: 'enterprise', customerId: 'cus_secret' });
  });

  it('encrypts with the first key and decrypts with any of the ring (rotation)', async () => {
    const old = new AesGcmCodec(parsePayloadKeys(`old:${k1}`), false);
    const rotated = new AesGcmCodec(parsePayloadKeys(`new:${k2},old:${k1}`), false);
    const [byOld] = await old.encode([input]);
    const [byNew] = await rotated.encode([input]);
    expect(text(byNew!.metadata!['encryption-key-id'])).toBe('new');
    await expect(rotated.decode([byOld!, byNew!])).resolves.toHaveLength(2);
    await expect(old.decode([byNew!])).rejects.toThrow('payload encrypted with key "new", which is not in TEMPORAL_PAYLOAD_KEYS');
  });

  it('passes plaintext through by default (recorded histories replay), and refuses it when encryption is required', async () => {
    await expect(new AesGcmCodec(parsePayloadKeys(`k1:${k1}`), false).decode([input])).resolves.toEqual([input]);
    await expect(new AesGcmCodec(parsePayloadKeys(`k1:${k1}`), true).decode([input])).rejects.toThrow(/refused a plaintext payload: TEMPORAL_PAYLOAD_ENCRYPTION=required/);
  });

  it('refuses an altered payload, or one sealed by another key of the same id', async () => {
    const codec = new AesGcmCodec(parsePayloadKeys(`k1:${k1}`), false);
    const [sealed] = await codec.encode([input]);
    const data = Buffer.from(sealed!.data!);
    data[20] = data[20]! ^ 1;
    await expect(codec.decode([{ ...sealed!, data }])).rejects.toThrow('does not decrypt with it');
    await expect(new AesGcmCodec(parsePayloadKeys(`k1:${k2}`), false).decode([sealed!])).rejects.toThrow('does not decrypt with it');
  });

  it('is off with no keys; required without keys, a short key, a bad entry or a repeated id stop the start-up without printing a key', () => {
    expect(payloadCodec({ TEMPORAL_PAYLOAD_ENCRYPTION: 'optional' })).toBeUndefined();
    expect(() => payloadCodec({ TEMPORAL_PAYLOAD_ENCRYPTION: 'required' })).toThrow('TEMPORAL_PAYLOAD_ENCRYPTION: is required, but TEMPORAL_PAYLOAD_KEYS is not set');
    const short = randomBytes(16).toString('base64');
    const failures = [`k1:${short}`, k1, `k1:${k1},k1:${k2}`].map((v) => {
      try {
        parsePayloadKeys(v);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error(`accepted ${v}`);
    });
    expect(failures[0]).toContain('key "k1" (value 1): must be 32 bytes in base64');
    expect(failures[1]).toContain('value 1 of the list: must be id:base64key');
    expect(failures[2]).toContain('every key needs its own id');
    for (const f of failures) for (const k of [k1, k2, short]) expect(f).not.toContain(k);
  });
});
