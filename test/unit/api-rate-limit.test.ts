/**
 * Rate limiting on the public endpoints: a client over its budget gets 429 as a problem document
 * with Retry-After; probes are never limited, and the webhook has its own budget.
 */
import { once } from 'node:events';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/api/app';
import { PROBLEM_CONTENT_TYPE, problemType } from '../../src/api/problem';
import { offlineApiDeps } from './api-deps';

describe('rate limiting', () => {
  const deps = offlineApiDeps({ rateLimit: { apiPerMinute: 3, webhookPerMinute: 2 } });
  let server: http.Server;
  let url: string;
  beforeAll(async () => {
    server = createApp(deps).listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.close();
    await deps.db.$disconnect();
  });

  it('answers 429 with Retry-After once a client is over its budget, per endpoint group', async () => {
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await fetch(`${url}/api/tenants/status`)).status);
    expect(statuses).toEqual([401, 401, 401, 429]);

    const limited = await fetch(`${url}/api/tenants/status`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toMatch(new RegExp(`^${PROBLEM_CONTENT_TYPE.replace('+', '\\+')}`));
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('ratelimit-policy')).toMatch(/q=3; w=60/);
    expect(await limited.json()).toMatchObject({ type: problemType('rate-limited'), status: 429 });

    // The webhook's budget is separate (2 a minute here): its first two requests get through to the signature check.
    const hook = () => fetch(`${url}/webhooks/stripe`, { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } }).then((r) => r.status);
    expect([await hook(), await hook(), await hook()]).toEqual([400, 400, 429]);

    // Probes are never limited (a kubelet probing every few seconds must not be turned away).
    for (let i = 0; i < 5; i++) expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });
});
