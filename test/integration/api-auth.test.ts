/**
 * Who may call what, over real HTTP against the real stack: user JWTs on the tenant read endpoints,
 * the service token on the internal provision/deprovision endpoints (idempotent by Idempotency-Key),
 * and a user never seeing another user's tenant.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, UnsecuredJWT } from 'jose';
import { tenantIdForCustomer } from '../../src/api/ids';
import { problemType } from '../../src/api/problem';
import { tenantWorkflowId } from '../../src/contract';
import {
  JWT,
  SERVICE_TOKEN,
  event,
  get,
  newCustomer,
  post,
  postEvent,
  readNamespace,
  userToken,
  waitForApiStatus,
  waitForNamespaceGone,
  withApiStack,
  workflowRuns,
  type HttpAnswer,
  type StatusBody,
} from './api-harness';
import { testDb, testKube, useTemporalClient } from './helpers';

describe('API authentication and the internal endpoints (real stack)', () => {
  const db = testDb();
  const kube = testKube();
  const temporal = useTemporalClient();
  afterAll(() => db.$disconnect());

  const slugOf = (res: HttpAnswer<object>) => String((res.body as { type?: unknown }).type).split('/').pop();
  const key = () => `test-${randomUUID()}`;
  // Issued now unless the claims say otherwise (`iat: undefined` leaves it out).
  const sign = (claims: Record<string, unknown>, overrides: { secret?: string; alg?: string } = {}) =>
    new SignJWT({ iat: now(), ...claims }).setProtectedHeader({ alg: overrides.alg ?? 'HS256' }).sign(new TextEncoder().encode(overrides.secret ?? JWT.secret));
  const now = () => Math.floor(Date.now() / 1000);

  it('enforces the auth contract, keeps tenants private, and provisions/deprovisions idempotently', () =>
    withApiStack({ prefix: 'api-auth', db, client: temporal.client }, async ({ api, track }) => {
      // Alice pays through Stripe; Bob is a Phase-2 user the internal service provisions for.
      const alice = newCustomer();
      const aliceTenant = track(tenantIdForCustomer(alice));
      expect((await postEvent(api, event({ type: 'payment_intent.succeeded', customer: alice, plan: 'starter' }))).body).toMatchObject({ outcome: 'queued' });
      const aliceId = (await db.user.findUniqueOrThrow({ where: { stripeCustomerId: alice } })).id;
      const bob = await db.user.create({ data: { email: 'bob@example.test' } });
      const aliceToken = await userToken(aliceId);
      const bobToken = await userToken(bob.id);

      // --- user endpoints -------------------------------------------------------------------
      const status = (token?: string) => get<StatusBody>(api, '/api/tenants/status', token);
      const unauthenticated = await status();
      expect(unauthenticated.status).toBe(401);
      expect(unauthenticated.contentType).toMatch(/^application\/problem\+json/);
      expect(unauthenticated.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(slugOf(unauthenticated)).toBe('unauthorized');

      const rejected: Array<[string, string]> = [
        ['not a JWT', 'garbage'],
        ['signed with another secret', await sign({ sub: aliceId, iss: JWT.issuer, aud: JWT.audience, exp: now() + 60 }, { secret: 'x'.repeat(40) })],
        ['expired beyond the clock tolerance', await sign({ sub: aliceId, iss: JWT.issuer, aud: JWT.audience, exp: now() - 60 })],
        ['from another issuer', await sign({ sub: aliceId, iss: 'https://evil.example', aud: JWT.audience, exp: now() + 60 })],
        ['for another audience', await sign({ sub: aliceId, iss: JWT.issuer, aud: 'someone-else', exp: now() + 60 })],
        ['without exp', await sign({ sub: aliceId, iss: JWT.issuer, aud: JWT.audience })],
        ['without iat', await sign({ sub: aliceId, iss: JWT.issuer, aud: JWT.audience, exp: now() + 60, iat: undefined })],
        ['issued two days ago (JWT_MAX_AGE_SECONDS is a day)', await sign({ sub: aliceId, iss: JWT.issuer, aud: JWT.audience, iat: now() - 2 * 86_400, exp: now() + 60 })],
        ['valid for 100 years', await sign({ sub: aliceId, iss: JWT.issuer, aud: JWT.audience, exp: now() + 100 * 365 * 86_400 })],
        ['with a sub that is not a user id', await sign({ sub: 'alice', iss: JWT.issuer, aud: JWT.audience, exp: now() + 60 })],
        ['unsigned (alg none)', new UnsecuredJWT({ sub: aliceId }).setIssuer(JWT.issuer).setAudience(JWT.audience).setExpirationTime('1h').encode()],
      ];
      for (const [what, token] of rejected) {
        const res = await status(token);
        expect({ what, status: res.status, slug: slugOf(res) }).toEqual({ what, status: 401, slug: 'invalid-token' });
        expect(JSON.stringify(res.body)).not.toContain(token);
      }
      // Expired, but within the clock tolerance (5 s): accepted.
      expect((await status(await sign({ sub: aliceId, iss: JWT.issuer, aud: JWT.audience, exp: now() - 2 }))).status).toBe(200);
      // The service token is not a user.
      expect(await status(SERVICE_TOKEN).then((r) => [r.status, slugOf(r)])).toEqual([403, 'forbidden']);

      await waitForApiStatus(api, aliceToken, aliceTenant, 'active');
      // Bob sees nothing of Alice's; her tenant is "not found" for him, exactly like a tenant that does not exist.
      expect((await status(bobToken)).body).toEqual({ userId: bob.id, tenants: [], nextCursor: null });
      const foreign = await get(api, `/api/tenants/${aliceTenant}`, bobToken);
      const missing = await get(api, `/api/tenants/${randomUUID()}`, bobToken);
      expect([foreign.status, slugOf(foreign)]).toEqual([404, 'tenant-not-found']);
      expect([missing.status, slugOf(missing)]).toEqual([404, 'tenant-not-found']);
      expect(Object.keys(foreign.body).sort()).toEqual(Object.keys(missing.body).sort());
      expect((await get(api, `/api/tenants/${aliceTenant}`, aliceToken)).status).toBe(200);

      // --- internal endpoints ---------------------------------------------------------------
      const provision = (body: unknown, options: { token?: string; idempotencyKey?: string; contentType?: string }) =>
        post({ url: api.adminUrl }, '/api/tenants/provision', body, options);
      const bobRequest = { userId: bob.id, plan: 'starter' };
      expect(await provision(bobRequest, { idempotencyKey: key() }).then((r) => [r.status, slugOf(r)])).toEqual([401, 'unauthorized']);
      expect(await provision(bobRequest, { token: 'wrong-service-token', idempotencyKey: key() }).then((r) => [r.status, slugOf(r)])).toEqual([401, 'invalid-token']);
      expect(await provision(bobRequest, { token: bobToken, idempotencyKey: key() }).then((r) => [r.status, slugOf(r)])).toEqual([403, 'forbidden']);
      const service = { token: SERVICE_TOKEN };
      expect(await provision(bobRequest, service).then((r) => [r.status, slugOf(r)])).toEqual([400, 'missing-idempotency-key']);
      expect(await provision('userId=x', { ...service, idempotencyKey: key(), contentType: 'text/plain' }).then((r) => [r.status, slugOf(r)])).toEqual([415, 'unsupported-media-type']);
      expect(await provision('{"userId":', { ...service, idempotencyKey: key() }).then((r) => [r.status, slugOf(r)])).toEqual([400, 'malformed-json']);
      const invalid = await provision({ userId: 'bob', plan: 'starter', extra: true }, { ...service, idempotencyKey: key() });
      expect([invalid.status, slugOf(invalid)]).toEqual([400, 'invalid-request']);
      expect(invalid.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'userId' })]));
      expect(await provision({ userId: bob.id, plan: 'platinum' }, { ...service, idempotencyKey: key() }).then((r) => [r.status, slugOf(r)])).toEqual([422, 'unknown-plan']);
      expect(await provision({ userId: randomUUID(), plan: 'starter' }, { ...service, idempotencyKey: key() }).then((r) => [r.status, slugOf(r)])).toEqual([422, 'unknown-user']);
      expect(await provision({ userId: bob.id, plan: 'starter', tenantId: aliceTenant }, { ...service, idempotencyKey: key() }).then((r) => [r.status, slugOf(r)])).toEqual([409, 'tenant-conflict']);

      const k = key();
      const first = await provision(bobRequest, { ...service, idempotencyKey: k });
      expect(first.status).toBe(202);
      const bobTenant = track(String(first.body.tenantId));
      expect(first.body).toEqual({ workflowId: tenantWorkflowId(bobTenant), tenantId: bobTenant });
      const again = await provision(bobRequest, { ...service, idempotencyKey: k });
      expect(again.status).toBe(202);
      expect(again.body).toEqual(first.body);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      const reused = await provision({ ...bobRequest, plan: 'pro' }, { ...service, idempotencyKey: k });
      expect([reused.status, slugOf(reused)]).toEqual([422, 'idempotency-key-reused']);

      const bobActive = await waitForApiStatus(api, bobToken, bobTenant, 'active');
      expect(bobActive.plan).toBe('starter');
      expect(await workflowRuns(temporal.client, bobTenant)).toBe(1);
      expect((await status(aliceToken)).body.tenants.map((t) => t.tenantId)).toEqual([aliceTenant]);

      const deprovision = (body: unknown, idempotencyKey = key()) => post({ url: api.adminUrl }, '/api/tenants/deprovision', body, { ...service, idempotencyKey });
      expect(await post({ url: api.adminUrl }, '/api/tenants/deprovision', { tenantId: bobTenant }, { token: aliceToken, idempotencyKey: key() }).then((r) => [r.status, slugOf(r)])).toEqual([403, 'forbidden']);
      expect(await deprovision({ tenantId: randomUUID() }).then((r) => [r.status, slugOf(r)])).toEqual([404, 'tenant-not-found']);
      expect(await deprovision({ tenantId: bobTenant, graceSeconds: -1 }).then((r) => [r.status, slugOf(r)])).toEqual([400, 'invalid-request']);
      const dk = key();
      const gone = await deprovision({ tenantId: bobTenant, reason: 'test' }, dk);
      expect(gone.status).toBe(202);
      expect(gone.body).toEqual({ workflowId: tenantWorkflowId(bobTenant), tenantId: bobTenant });
      expect(await deprovision({ tenantId: bobTenant, reason: 'test' }, dk).then((r) => [r.status, r.headers.get('idempotent-replayed')])).toEqual([202, 'true']);
      await waitForNamespaceGone(kube, bobTenant);
      await waitForApiStatus(api, bobToken, bobTenant, 'deprovisioned');
      // Deprovisioning what is already gone is satisfied, not an error.
      expect((await deprovision({ tenantId: bobTenant })).status).toBe(202);

      // Alice's per-customer tenant goes the same way.
      expect((await deprovision({ tenantId: aliceTenant })).status).toBe(202);
      await waitForNamespaceGone(kube, aliceTenant);
      expect(await readNamespace(kube, aliceTenant)).toBeUndefined();
      expect(problemType('forbidden')).toMatch(/^tag:/);
    }));
});
