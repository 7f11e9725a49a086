/**
 * POST /codec/decode on the admin app, in the codec-server protocol of Temporal's Web UI and CLI.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { createAdminApp } from '../../src/api/app';
import { payloadCodec } from '../../src/temporal/codec';
import { offlineApiDeps } from './api-deps';

const codec = payloadCodec({ TEMPORAL_PAYLOAD_KEYS: `k1:${randomBytes(32).toString('base64')}`, TEMPORAL_PAYLOAD_ENCRYPTION: 'required' })!;
const token = 'y'.repeat(32);
const wire = (p: Payload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  data: Buffer.from(p.data ?? []).toString('base64'),
});

describe('POST /codec/decode', () => {
  const deps = offlineApiDeps({ payloadCodec: codec });
  let url: string;
  let server: ReturnType<ReturnType<typeof createAdminApp>['listen']>;
  beforeAll(async () => {
    server = createAdminApp(deps).listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/codec/decode`;
  });
  afterAll(async () => {
    server.close();
    await deps.db.$disconnect();
  });

  const post = (body: unknown, auth = `Bearer ${token}`) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: auth }, body: JSON.stringify(body), signal: AbortSignal.timeout(5_000) });

  it('decrypts sealed payloads and passes plaintext ones through (even when the worker requires encryption)', async () => {
    const plain = defaultPayloadConverter.toPayload({ tenantId: 't1', plan: 'pro' });
    const [sealed] = await codec.encode([plain]);
    const res = await post({ payloads: [wire(sealed!), wire(plain)] });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { payloads: ReturnType<typeof wire>[] };
    expect(body.payloads).toEqual([wire(plain), wire(plain)]);
  });

  it('answers only the service token', async () => {
    expect((await post({ payloads: [] }, 'Bearer not-the-token')).status).toBe(401);
    expect((await post({ payloads: [] }, '')).status).toBe(401);
  });

  it('refuses a payload it cannot decrypt, and a body that is not the protocol, with the reason', async () => {
    const [sealed] = await payloadCodec({ TEMPORAL_PAYLOAD_KEYS: `other:${randomBytes(32).toString('base64')}`, TEMPORAL_PAYLOAD_ENCRYPTION: 'optional' })!.encode([defaultPayloadConverter.toPayload(1)]);
    const res = await post({ payloads: [wire(sealed!)] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toContain('payload encrypted with key "other", which is not in TEMPORAL_PAYLOAD_KEYS');
    expect((await post({ payloads: [{ data: '!!' }] })).status).toBe(400);
  });
});
