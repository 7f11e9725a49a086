/**
 * /readyz shares one round of checks between callers: a flood of probes costs one PostgreSQL query
 * and one Temporal call per READY_CACHE_MS, not one each.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import pino from 'pino';
import type { Db } from '../../src/db/client';
import { readinessRouter } from '../../src/api/health';
import { errorHandler } from '../../src/api/problem';
import type { TenantWorkflows } from '../../src/api/temporal';

describe('GET /readyz', () => {
  const queries = { n: 0 };
  const pings = { n: 0 };
  let draining = false;
  const app = express();
  app.use(
    readinessRouter({
      db: { $queryRaw: () => new Promise((r) => setTimeout(() => r([{ n: queries.n++ }]), 50)) } as unknown as Db,
      workflows: { ping: () => Promise.resolve(void pings.n++) } as unknown as TenantWorkflows,
      logger: pino({ level: 'silent' }),
      readyTimeoutMs: 1_000,
      cacheMs: 1_500,
      draining: () => draining,
    }),
  );
  app.use(errorHandler(pino({ level: 'silent' })));
  let url: string;
  let server: ReturnType<typeof app.listen>;
  beforeAll(async () => {
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it('answers 100 concurrent probes with one round of checks, and checks again once the cache time has passed', async () => {
    const answers = await Promise.all(Array.from({ length: 100 }, () => fetch(url).then((r) => r.status)));
    expect(answers).toEqual(Array(100).fill(200));
    expect([queries.n, pings.n]).toEqual([1, 1]);
    expect((await fetch(url)).status).toBe(200);
    expect([queries.n, pings.n]).toEqual([1, 1]);
    await new Promise((r) => setTimeout(r, 1_600));
    expect((await fetch(url)).status).toBe(200);
    expect([queries.n, pings.n]).toEqual([2, 2]);
  });

  it('turns 503 at once when draining begins, cached checks or not', async () => {
    draining = true;
    expect((await fetch(url)).status).toBe(503);
    draining = false;
  });
});
