/**
 * The codec server on the admin port: POST /codec/decode in the protocol of Temporal's Web UI and
 * CLI (`{"payloads":[{"metadata":{…base64},"data":"base64"}]}` in and out), so an operator can read
 * the histories that the payload codec (src/temporal/codec.ts) keeps encrypted. Service token only:
 * it hands out plaintext. There is no /encode: nothing outside the service should make payloads
 * the worker would accept. Without TEMPORAL_PAYLOAD_KEYS it returns the payloads as they are.
 */
import express, { type Router } from 'express';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { z } from 'zod';
import type { createAuth } from './auth';
import { ENCRYPTED_ENCODING } from '../temporal/codec';
import { HttpProblem, validationProblem } from './problem';

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');

const codecPayload = z.object({ metadata: z.record(z.string(), base64).default({}), data: base64.default('') });

export const codecPayloads = z.object({ payloads: z.array(codecPayload).max(1_000) }).meta({ id: 'CodecPayloads', description: "Payloads as Temporal's codec-server protocol carries them (metadata values and data in base64)." });

const fromWire = (p: z.infer<typeof codecPayload>): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])),
  data: new Uint8Array(Buffer.from(p.data, 'base64')),
});

const toWire = (p: Payload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

const isEncrypted = (p: Payload) => Buffer.from(p.metadata?.encoding ?? []).toString() === ENCRYPTED_ENCODING;

export function codecRouter(deps: { auth: ReturnType<typeof createAuth>; codec: PayloadCodec | undefined }): Router {
  const router = express.Router();
  const json = express.json({ limit: '4mb', strict: true, type: 'application/json' });
  router.post('/codec/decode', deps.auth.requireService, json, async (req, res) => {
    const parsed = codecPayloads.safeParse(req.body);
    if (!parsed.success) throw validationProblem(parsed.error, 'the payloads');
    const payloads = parsed.data.payloads.map(fromWire);
    let decoded: Payload[];
    try {
      // Plaintext comes back as it is, even in required mode: reading is not acting on it.
      const codec = deps.codec;
      decoded = codec ? await Promise.all(payloads.map(async (p) => (isEncrypted(p) ? (await codec.decode([p]))[0]! : p))) : payloads;
    } catch (err) {
      throw new HttpProblem('invalid-request', (err as Error).message);
    }
    res.json({ payloads: decoded.map(toWire) });
  });
  return router;
}
