/**
 * The payload codec on the real stack. A worker with TEMPORAL_PAYLOAD_ENCRYPTION=required and a
 * client with the key provision a tenant; the history, read by a client without the key, holds
 * only `binary/encrypted` payloads with no tenant id, plan or customer in clear. Then the attack:
 * a raw client without the key starts the workflow on the same worker, and the worker fails the
 * workflow task before any step runs: no activity, no tenant row, no namespace.
 */
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import type { WorkflowHandle } from '@temporalio/client';
import express from 'express';
import { createAuth } from '../../src/api/auth';
import { codecRouter } from '../../src/api/codec';
import { loadWorkerConfig } from '../../src/config';
import { deprovisionSignal, statusQuery, tenantWorkflowId } from '../../src/contract';
import { ENCRYPTED_ENCODING, payloadCodec } from '../../src/temporal/codec';
import { connectTemporalClient, temporalSettingsFromEnv, type TemporalSettings } from '../../src/temporal/connection';
import { tenantNamespace } from '../../src/naming';
import { createWorker } from '../../src/worker';
import type { provisionTenant } from '../../src/workflows';
import { env, eventually, newTenantId, realDeps, testDb, testKube, uniqueTaskQueue, useTemporalClient } from './helpers';

const execFileP = promisify(execFile);

interface FoundPayload {
  path: string;
  encoding: string;
  data: string;
}

/** Every payload in a history, with where it sits; search attributes are not payloads the codec sees. */
function payloadsOf(value: unknown, at = ''): FoundPayload[] {
  if (!value || typeof value !== 'object' || value instanceof Uint8Array) return [];
  const o = value as Record<string, unknown>;
  if (o.data instanceof Uint8Array && o.metadata && typeof o.metadata === 'object') {
    const encoding = (o.metadata as Record<string, Uint8Array>).encoding;
    return [{ path: at, encoding: Buffer.from(encoding ?? []).toString(), data: Buffer.from(o.data).toString('latin1') }];
  }
  return Object.entries(o).flatMap(([k, v]) => (k === 'searchAttributes' ? [] : payloadsOf(v, `${at}.${k}`)));
}

/** `temporal workflow show` with `--codec-endpoint` at POST /codec/decode, served as the admin port serves it. */
async function showThroughCodecEndpoint(workflowId: string, settings: TemporalSettings): Promise<string> {
  const token = randomBytes(24).toString('hex');
  const auth = createAuth({ jwtSecret: 'x'.repeat(32), issuer: 'i', audience: 'a', clockToleranceSeconds: 0, maxAgeSeconds: 60, serviceTokens: [token] });
  const app = express().use(codecRouter({ auth, codec: payloadCodec(settings) }));
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/codec`;
    const { stdout } = await execFileP(
      'temporal',
      ['workflow', 'show', '--workflow-id', workflowId, '--address', env('TEMPORAL_ADDRESS'), '--codec-endpoint', endpoint, '--codec-auth', `Bearer ${token}`, '--output', 'json', '--command-timeout', '20s'],
      { timeout: 30_000 },
    );
    return stdout;
  } finally {
    server.close();
  }
}

describe('the payload codec', () => {
  const db = testDb();
  const kube = testKube();
  const plain = useTemporalClient(); // the stack's environment: no key
  const keys = `k2026:${randomBytes(32).toString('base64')}`;
  const taskQueue = uniqueTaskQueue('codec');
  const handles: WorkflowHandle[] = [];

  afterAll(async () => {
    for (const h of handles) await h.terminate('temporal-codec test').catch(() => undefined);
    await db.$disconnect();
  });

  it('with TEMPORAL_PAYLOAD_ENCRYPTION=required: a keyed client provisions; a raw client without the key cannot make the worker do anything', async () => {
    const workerEnv = { ...process.env, TASK_QUEUE: taskQueue, TEMPORAL_PAYLOAD_KEYS: keys, TEMPORAL_PAYLOAD_ENCRYPTION: 'required' };
    const { worker, connection: workerConnection } = await createWorker(loadWorkerConfig(workerEnv), realDeps(db));
    const keyed = await connectTemporalClient(temporalSettingsFromEnv(workerEnv), 10_000);
    const [tenantId, attackerTenant] = [newTenantId(), newTenantId()];
    try {
      await worker.runUntil(async () => {
        // The control: the service's own client, with the key.
        const handle = await keyed.client.workflow.start<typeof provisionTenant>('provisionTenant', {
          taskQueue,
          workflowId: tenantWorkflowId(tenantId),
          args: [{ tenantId, plan: 'pro', customerId: 'cus_codec_secret' }],
        });
        handles.push(handle);
        await eventually(async () => (await handle.query(statusQuery)).status === 'active', 180_000, 'tenant active with the codec');

        // Read by a client without the key: only ciphertext.
        const history = await plain.client.workflow.getHandle(tenantWorkflowId(tenantId)).fetchHistory();
        const payloads = payloadsOf(history.events);
        expect(payloads.length).toBeGreaterThan(5);
        // Plaintext only in the SDK's own bookkeeping of markers (a local activity's sequence number,
        // type and times; patch ids), which core writes without the codec. Their results are sealed.
        const bookkeeping = /\.markerRecordedEventAttributes\.details\.(data|patch-data)\./;
        expect(payloads.filter((p) => p.encoding !== ENCRYPTED_ENCODING && !bookkeeping.test(p.path))).toEqual([]);
        expect(payloads.filter((p) => /markerRecordedEventAttributes\.details\.result\./.test(p.path)).length).toBeGreaterThan(3);
        for (const p of payloads) expect(p.data).not.toMatch(new RegExp(`${tenantId}|cus_codec_secret|"pro"`));

        await handle.signal(deprovisionSignal, {});
        await handle.result();

        // The operator's way in: the `temporal` CLI through the admin port's codec endpoint (on
        // the closed run: `workflow show` of a running one waits for new events).
        const shown = await showThroughCodecEndpoint(tenantWorkflowId(tenantId), temporalSettingsFromEnv(workerEnv));
        expect(shown).not.toContain(Buffer.from(ENCRYPTED_ENCODING).toString('base64'));
        const started = (JSON.parse(shown) as { events: { workflowExecutionStartedEventAttributes?: { input: { payloads: { data: string }[] } } }[] }).events[0];
        expect(Buffer.from(started!.workflowExecutionStartedEventAttributes!.input.payloads[0]!.data, 'base64').toString()).toContain('cus_codec_secret');

        // The attack: a raw client that reached the port, without the key.
        const attack = await plain.client.workflow.start<typeof provisionTenant>('provisionTenant', {
          taskQueue,
          workflowId: tenantWorkflowId(attackerTenant),
          args: [{ tenantId: attackerTenant, plan: 'enterprise' }],
        });
        handles.push(attack);
        const failed = await eventually(async () => {
          const { events } = await attack.fetchHistory();
          return events?.find((e) => e.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes;
        }, 30_000, 'the workflow task to fail');
        expect(failed?.failure?.message).toMatch(/refused a plaintext payload: TEMPORAL_PAYLOAD_ENCRYPTION=required/);
        await new Promise((r) => setTimeout(r, 3_000)); // the retries of the task change nothing either
        const { events } = await attack.fetchHistory();
        expect(events?.filter((e) => e.activityTaskScheduledEventAttributes || e.markerRecordedEventAttributes || e.workflowExecutionCompletedEventAttributes)).toEqual([]);
      });
    } finally {
      await keyed.connection.close();
      await workerConnection.close();
    }
    expect(await db.tenant.findUnique({ where: { id: attackerTenant } })).toBeNull();
    expect(await kube.read({ apiVersion: 'v1', kind: 'Namespace', name: tenantNamespace(attackerTenant) })).toBeUndefined();
  });
});
