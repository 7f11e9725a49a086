/**
 * The shipped dashboard and alert rules read only metrics the service really exports (or the
 * Temporal SDK's own `temporal_` ones): a renamed metric would otherwise leave a panel empty and an
 * alert silently never firing.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createMetrics } from '../../src/api/metrics';
import { createWorkerMetrics } from '../../src/observability';

const ROOT = path.resolve(__dirname, '../..');
const rules = readFileSync(path.join(ROOT, 'deploy/monitoring/prometheus-rules.yaml'), 'utf8');
const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'deploy/monitoring/grafana-dashboard.json'), 'utf8')) as {
  panels: { title: string; targets: { expr: string }[] }[];
};

async function exported(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const registry of [createMetrics({ defaultMetrics: false }).registry, createWorkerMetrics({ defaultMetrics: false }).registry]) {
    for (const m of await registry.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === 'histogram') for (const suffix of ['_bucket', '_count', '_sum']) names.add(`${m.name}${suffix}`);
    }
  }
  return names;
}

const referenced = (expr: string) => [...expr.matchAll(/\b(tenant_provisioner_[a-z0-9_]+|temporal_[a-z0-9_]+)\b/g)].map((m) => m[1]!);

describe('dashboard and alert rules', () => {
  it('reference only exported metrics', async () => {
    const names = await exported();
    const exprs = [...rules.matchAll(/^\s+expr: (?:>-\n)?([\s\S]*?)(?=\n\s+(?:for|labels):)/gm)].map((m) => m[1]!);
    const panels = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThanOrEqual(8);
    const unknown = [...exprs, ...panels].flatMap(referenced).filter((n) => n.startsWith('tenant_provisioner_') && !names.has(n));
    expect([...new Set(unknown)]).toEqual([]);
  });

  it('has an alert for each failure the operator must hear about', () => {
    for (const alert of ['TenantProvisioningFailing', 'TenantLifecycleStuck', 'TenantOutboxGrowing', 'StripeEventsStuckInReceived']) {
      expect(rules).toMatch(new RegExp(`- alert: ${alert}\\n`));
    }
    expect(dashboard.panels.map((p) => p.title)).toEqual(expect.arrayContaining(['Provisions: started, succeeded, failed (per 5 min)', 'Tenants by status']));
  });
});
