/**
 * "Cleanup also failed", or a workflow terminated while the tenant lived: the internal API's
 * deprovision starts a cleanup run for a tenant whose workflow is closed, instead of answering 409,
 * and the run removes everything labelled as the tenant's.
 */
import { randomUUID } from 'node:crypto';
import type { V1Namespace } from '@kubernetes/client-node';
import { tenantWorkflowId } from '../../src/contract';
import { LABEL_TENANT_ID } from '../../src/k8s/labels';
import { SERVICE_TOKEN, post, userToken, waitForApiStatus, withApiStack } from './api-harness';
import { eventually, testDb, testKube, useTemporalClient } from './helpers';

describe('cleanup of a tenant whose workflow is closed, through the internal API', () => {
  const db = testDb();
  const kube = testKube();
  const temporal = useTemporalClient();
  afterAll(() => db.$disconnect());

  it('POST /api/tenants/deprovision starts a cleanup run that removes everything', () =>
    withApiStack({ prefix: 'api-cleanup', db, client: temporal.client }, async ({ api, track }) => {
      const user = await db.user.create({ data: { email: `cleanup-${randomUUID().slice(0, 8)}@example.test` } });
      const service = { token: SERVICE_TOKEN };
      const provisioned = await post({ url: api.adminUrl }, '/api/tenants/provision', { userId: user.id, plan: 'starter' }, { ...service, idempotencyKey: randomUUID() });
      expect(provisioned.status).toBe(202);
      const tenantId = track(String(provisioned.body.tenantId));
      const token = await userToken(user.id);
      await waitForApiStatus(api, token, tenantId, 'active');
      // Its workflow is gone while the tenant lives (terminated by hand, or by a history limit).
      await temporal.client.workflow.getHandle(tenantWorkflowId(tenantId)).terminate('simulated loss of the lifecycle workflow');

      const answer = await post({ url: api.adminUrl }, '/api/tenants/deprovision', { tenantId, reason: 'operator cleanup' }, { ...service, idempotencyKey: randomUUID() });
      expect(answer.status).toBe(202);
      await waitForApiStatus(api, token, tenantId, 'deprovisioned');
      await eventually(async () => (await kube.list<V1Namespace>('v1', 'Namespace', undefined, `${LABEL_TENANT_ID}=${tenantId}`)).length === 0, 120_000, 'the namespace gone');
    }));
});
