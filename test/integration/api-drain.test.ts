/**
 * Graceful drain, on the real API process wiring (both listeners, real PostgreSQL and Temporal):
 * on shutdown, readiness turns 503 at once while requests are still served for the delay that lets
 * load balancers notice; only then do the listeners close.
 */
import { loadApiConfig } from '../../src/api/config';
import { startServers } from '../../src/api/server';
import { createLogger } from '../../src/logging';
import { JWT, SERVICE_TOKEN, WEBHOOK_SECRET } from './api-harness';
import { env, eventually, uniqueTaskQueue } from './helpers';

describe('API drain on shutdown', () => {
  it('answers 503 on /readyz but keeps serving during the delay, then closes both ports', async () => {
    const delayMs = 2_000;
    const config = loadApiConfig({
      DATABASE_URL: env('DATABASE_URL'),
      TEMPORAL_ADDRESS: env('TEMPORAL_ADDRESS'),
      TASK_QUEUE: uniqueTaskQueue('drain'),
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      JWT_SECRET: JWT.secret,
      JWT_ISSUER: JWT.issuer,
      JWT_AUDIENCE: JWT.audience,
      SERVICE_TOKEN,
      HOST: '127.0.0.1',
      PORT: '0',
      ADMIN_HOST: '127.0.0.1',
      ADMIN_PORT: '0',
      SHUTDOWN_DELAY_MS: String(delayMs),
      SHUTDOWN_TIMEOUT_MS: '5000',
    });
    const servers = await startServers(config, createLogger({ service: 'drain-test', level: 'silent' }));
    const url = `http://127.0.0.1:${servers.port}`;
    const admin = `http://127.0.0.1:${servers.adminPort}`;
    const status = (u: string) => fetch(u, { signal: AbortSignal.timeout(5_000) }).then((r) => r.status, () => 'refused' as const);

    await eventually(async () => (await status(`${admin}/readyz`)) === 200, 30_000, 'ready before shutdown');
    const started = Date.now();
    const drained = servers.drain('SIGTERM');

    // During the delay: not ready, yet every request is still answered, on both ports.
    const ready = await fetch(`${admin}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ failed: ['shutdown'] });
    expect(await status(`${url}/healthz`)).toBe(200);
    expect(await status(`${url}/api/tenants/status`)).toBe(401);
    expect(await status(`${admin}/metrics`)).toBe(200);
    expect(Date.now() - started).toBeLessThan(delayMs);

    await drained;
    expect(Date.now() - started).toBeGreaterThanOrEqual(delayMs);
    expect(await status(`${url}/healthz`)).toBe('refused');
    expect(await status(`${admin}/metrics`)).toBe('refused');
  });
});
