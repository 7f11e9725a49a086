/**
 * The Temporal Web UI in a real browser (Debian's Chromium, driven by playwright-core through
 * `executablePath`; `bash scripts/browser.sh ensure` installs it): after a provision, the tenant's
 * workflow is found by its TenantId search attribute, its row carries the static summary (tenant,
 * plan, customer), and its page shows the summary and the current details (status, step).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chromium, type Browser } from 'playwright-core';
import { createTenantWorkflows } from '../../src/api/temporal';
import { statusQuery, tenantWorkflowId } from '../../src/contract';
import { workflowsPath } from './api-harness';
import { ROOT, env, eventually, newTenantId, temporalClient, uniqueTaskQueue, withWorker } from './helpers';
import { mockActivities } from './mock-activities';

describe('Temporal Web UI (Chromium)', () => {
  let browser: Browser | undefined;
  afterAll(async () => {
    await browser?.close();
  });

  it('finds a provisioned tenant by search attribute and shows its summary and current step', async () => {
    const executablePath = execFileSync('bash', [`${ROOT}/scripts/browser.sh`, 'path'], { encoding: 'utf8' }).trim();
    const ui = env('TEMPORAL_UI_URL');
    const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
    const taskQueue = uniqueTaskQueue('ui');
    const tenantId = newTenantId();
    const customerId = `cus_ui_${randomBytes(6).toString('hex')}`;
    const { client, connection } = await temporalClient();
    try {
      await withWorker({ taskQueue, workflowsPath, activities: mockActivities([]) }, async () => {
        // Started the way the API starts it (src/api/temporal.ts sets the static summary).
        const workflows = createTenantWorkflows({ client, connection, taskQueue, timeoutMs: 10_000 });
        await workflows.start({ tenantId, plan: 'pro', userId: newTenantId(), customerId, start: { signal: 'resume' }, reuse: 'always' });
        const handle = client.workflow.getHandle(tenantWorkflowId(tenantId));
        await eventually(async () => (await handle.query(statusQuery)).status === 'active', 30_000, 'the tenant to be active');

        browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
        const page = await browser.newPage();
        const query = encodeURIComponent(`TenantId="${tenantId}"`);
        // Visibility is eventually consistent: reload until the row is there.
        await eventually(
          async () => {
            await page.goto(`${ui}/namespaces/${namespace}/workflows?query=${query}`);
            await page.getByRole('link', { name: tenantWorkflowId(tenantId) }).first().waitFor({ timeout: 5_000 });
            return true;
          },
          60_000,
          'the workflow row in the UI',
        );
        // The list shows tenant, plan, status and customer as columns (the UI's own column picker,
        // from the search attributes the workflow keeps current).
        await page.getByTestId('workflows-summary-table-configuration-button').click();
        for (const column of ['TenantPlan', 'TenantStatus', 'CustomerId']) await page.getByTestId(`orderable-list-item-${column}-add-button`).click();
        await page.getByTestId('drawer-close-button').click();
        const row = page.locator('tr', { has: page.getByRole('link', { name: tenantWorkflowId(tenantId) }) }).first();
        await eventually(async () => /\bactive\b/.test(await row.innerText()), 30_000, 'the row to show TenantStatus active');
        const rowText = await row.innerText();
        expect(rowText).toContain('pro');
        expect(rowText).toContain(customerId);

        // The workflow's page: the static summary, and the current details the workflow keeps current.
        await page.getByRole('link', { name: tenantWorkflowId(tenantId) }).first().click();
        await page.waitForURL(/\/history/);
        await page.getByText('User Metadata', { exact: true }).click();
        // The UI renders user metadata (markdown) in sandboxed frames: read every frame's text.
        const framesText = async () => (await Promise.all(page.frames().map((f) => f.locator('body').innerText().catch(() => '')))).join('\n');
        const metadata = await eventually(
          async () => {
            const text = await framesText();
            return text.includes(`Tenant ${tenantId} (plan pro) for Stripe customer ${customerId}`) && /active · plan pro · namespace tenant-[0-9a-f-]+ · \S+ steps/.test(text) ? text : undefined;
          },
          30_000,
          'the summary and the current details on the User Metadata tab',
        );
        expect(metadata).toMatch(new RegExp(`namespace tenant-${tenantId}`));

        await handle.signal('deprovision', { reason: 'test cleanup', graceSeconds: 0 });
        await handle.result().catch(() => undefined);
      });
    } finally {
      await connection.close();
    }
  }, 180_000);
});
