/**
 * Temporal behind mTLS, on the real stack: a TLS-terminating proxy on loopback (HTTP/2 by ALPN,
 * client certificates required and checked against a CA made for this test) pipes bytes to the
 * stack's Temporal. The worker and a client built by the service's one connection factory, with
 * the right CA and certificate, provision a tenant through it; a client without a certificate, with
 * one of another CA, or in plaintext, is refused, and so is a worker without a certificate.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { loadWorkerConfig } from '../../src/config';
import { deprovisionSignal, statusQuery, tenantWorkflowId } from '../../src/contract';
import { connectTemporalClient, temporalSettingsFromEnv, type TemporalSettings } from '../../src/temporal/connection';
import { connectTemporalWorker } from '../../src/temporal/native';
import { createWorker } from '../../src/worker';
import type { provisionTenant } from '../../src/workflows';
import { makeTestPki, type TestPki } from '../support/certs';
import { env, eventually, newTenantId, realDeps, testDb, testKube, uniqueTaskQueue } from './helpers';
import { splice } from './tcp-proxy';

/** Terminates mTLS and pipes the plaintext to `target`; remembers why handshakes failed. */
class MtlsProxy {
  readonly handshakeErrors: string[] = [];
  readonly accepted: string[] = [];
  private readonly sockets = new Set<net.Socket>();
  private server: tls.Server | undefined;
  port = 0;

  constructor(
    private readonly pki: TestPki,
    private readonly target: { host: string; port: number },
  ) {}

  async start(): Promise<void> {
    const server = tls.createServer(
      {
        key: readFileSync(this.pki.serverKey),
        cert: readFileSync(this.pki.serverCert),
        ca: readFileSync(this.pki.ca),
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ['h2'],
        handshakeTimeout: 5_000,
      },
      (client) => {
        this.accepted.push(String(client.getPeerCertificate().subject?.CN ?? '?'));
        const upstream = net.connect(this.target.port, this.target.host);
        upstream.setTimeout(60_000, () => upstream.destroy());
        splice(client, upstream, this.sockets);
      },
    );
    server.on('tlsClientError', (err) => this.handshakeErrors.push(err.message));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

function withTimeout<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

describe('Temporal over mTLS through the connection factory', () => {
  const pki = makeTestPki();
  const target = env('TEMPORAL_ADDRESS');
  const proxy = new MtlsProxy(pki, { host: target.slice(0, target.lastIndexOf(':')), port: Number(target.slice(target.lastIndexOf(':') + 1)) });
  const db = testDb();
  const kube = testKube();
  let settings: TemporalSettings;

  beforeAll(async () => {
    await proxy.start();
    settings = temporalSettingsFromEnv({
      TEMPORAL_ADDRESS: `127.0.0.1:${proxy.port}`,
      TEMPORAL_NAMESPACE: process.env.TEMPORAL_NAMESPACE ?? 'default',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.ca,
      TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
    });
  });
  afterAll(async () => {
    await proxy.stop();
    await db.$disconnect();
    pki.remove();
  });

  it('the worker and a client with the CA and a client certificate provision and deprovision a tenant through it', async () => {
    const taskQueue = uniqueTaskQueue('mtls');
    const tenantId = newTenantId();
    // The worker process's own path: its configuration from the environment, its factory.
    const config = loadWorkerConfig({
      ...process.env,
      TASK_QUEUE: taskQueue,
      TEMPORAL_ADDRESS: settings.TEMPORAL_ADDRESS,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.ca,
      TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
    });
    const { worker, connection: workerConnection } = await withTimeout(60_000, 'worker over mTLS', createWorker(config, realDeps(db)));
    const { client, connection } = await connectTemporalClient(settings, 10_000);
    try {
      await worker.runUntil(async () => {
        const handle = await client.workflow.start<typeof provisionTenant>('provisionTenant', { taskQueue, workflowId: tenantWorkflowId(tenantId), args: [{ tenantId, plan: 'starter' }] });
        await eventually(async () => (await handle.query(statusQuery)).status === 'active', 180_000, 'tenant active over mTLS');
        expect(await kube.read({ apiVersion: 'v1', kind: 'Namespace', name: `tenant-${tenantId}` })).toBeDefined();
        await handle.signal(deprovisionSignal, {});
        await withTimeout(180_000, 'deprovisioning over mTLS', handle.result());
      });
    } finally {
      await connection.close();
      await workerConnection.close();
    }
    expect(proxy.accepted).toContain('client');
  });

  const refused = async (s: TemporalSettings) => {
    const before = proxy.handshakeErrors.length;
    const error = await connectTemporalClient(s, 5_000).then(
      async ({ connection }) => {
        await connection.close();
        return undefined;
      },
      (err: unknown) => err as Error,
    );
    expect(error).toBeInstanceOf(Error);
    return { error: error!, seen: proxy.handshakeErrors.slice(before) };
  };

  it('a client without a client certificate is refused; the proxy says why', async () => {
    const { error, seen } = await refused({ ...settings, TEMPORAL_TLS_CLIENT_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_KEY_PATH: undefined });
    expect(error.message).toMatch(/connect|deadline|unavailable/i);
    expect(seen.join('\n')).toMatch(/peer did not return a certificate|certificate required/i);
  });

  it('a client with a certificate of another CA is refused', async () => {
    const { seen } = await refused({ ...settings, TEMPORAL_TLS_CLIENT_CERT_PATH: pki.strangerCert, TEMPORAL_TLS_CLIENT_KEY_PATH: pki.strangerKey });
    expect(seen.join('\n')).toMatch(/certificate/i);
  });

  it('a plaintext client is refused', async () => {
    const { seen } = await refused({ ...settings, TEMPORAL_TLS: 'off', TEMPORAL_TLS_SERVER_CA_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_KEY_PATH: undefined, TEMPORAL_TLS_SERVER_NAME: undefined });
    expect(seen.length).toBeGreaterThan(0);
  });

  it('a client that does not trust the server’s CA refuses the server', async () => {
    // The stranger CA as the trusted root: the proxy's certificate does not chain to it.
    const { error } = await refused({ ...settings, TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.strangerCert.replace('stranger.crt', 'stranger-ca.crt') });
    expect(error.message).toMatch(/connect|deadline|unavailable|certificate/i);
  });

  it('a worker without a client certificate cannot connect', async () => {
    const before = proxy.handshakeErrors.length;
    const attempt = connectTemporalWorker({ ...settings, TEMPORAL_TLS_CLIENT_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_KEY_PATH: undefined });
    await expect(withTimeout(30_000, 'worker connection without a certificate', attempt)).rejects.toThrow(/connect|transport|certificate|tls/i);
    expect(proxy.handshakeErrors.length).toBeGreaterThan(before);
  });
});
