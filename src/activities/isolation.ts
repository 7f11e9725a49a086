/**
 * The per-tenant check after the app is deployed: the app answers through its Service from inside
 * the cluster (a smoke check), and the tenant is isolated from a sentinel pod in a namespace of the
 * provisioner's own, while it still reaches DNS. Probes run in parallel from inside the tenant's
 * pod, so the check adds well under a second to a tenant's time to active.
 */
import { ApplicationFailure } from '@temporalio/common';
import { poolOf } from '../db/client';
import { NotProbeable, readyPod, tenantEndpoints } from '../isolation/discover';
import { runProbes, type Cell, type Probe } from '../isolation/truth-table';
import type { ActivityDeps, StepKit, TenantRef } from './common';

export interface IsolationCheckSettings {
  /** The namespace of the provisioner's sentinel pod (serving HTTP on `sentinelPort`). */
  sentinelNamespace: string;
  sentinelSelector: string;
  sentinelPort: number;
  /** The probe command in the tenant's image. */
  probeCommand: string[];
  /** Timeout of a probe that must be denied (the dropped packet is waited for this long). */
  deniedTimeoutMs: number;
  /** Smoke-check attempts through the Service before it counts as failed, 250 ms apart. */
  smokeAttempts: number;
}

export type IsolationResult = { status: 'verified'; at: string; cells: number } | { status: 'off' };

const short = (c: Cell) => `${c.to} ${c.protocol} ${c.target}: expected ${c.expected}, observed ${c.observed} (${c.detail})`;

export function isolationActivities(deps: ActivityDeps, kit: StepKit) {
  const { kube, settings } = deps;
  const { step, plan } = kit;
  const sql = poolOf(deps.db);

  return {
    /** After deployApp: smoke check through the Service, then isolation against the sentinel. */
    async verifyIsolation(input: TenantRef & { plan: string }): Promise<IsolationResult> {
      const check = settings.isolationCheck;
      const exec = deps.exec;
      if (!check || !exec) return { status: 'off' };
      plan(input.plan);
      return step(input.tenantId, 'verifyIsolation', async () => {
        let subject;
        let sentinel;
        try {
          [subject, sentinel] = await Promise.all([
            tenantEndpoints(kube, input.namespace, 'tenant', () => 'none'),
            readyPod(kube, check.sentinelNamespace, check.sentinelSelector),
          ]);
        } catch (err) {
          if (err instanceof NotProbeable) throw ApplicationFailure.retryable(`cannot check tenant ${input.tenantId}'s isolation: ${err.message}`, 'IsolationUnchecked');
          throw err;
        }
        if (!sentinel) {
          throw ApplicationFailure.retryable(
            `no ready sentinel pod (${check.sentinelSelector}) in namespace ${check.sentinelNamespace}: the isolation check needs it; deploy it, or turn the check off (ISOLATION_CHECK=off)`,
            'IsolationUnchecked',
          );
        }
        const source = subject.pod;
        const service = `${subject.serviceIp}:${subject.httpPort}`;
        const probes: Probe[] = [
          { from: 'tenant pod', source, to: 'own Service', protocol: 'http', target: service, expected: 'allowed' },
          { from: 'tenant pod', source, to: 'sentinel pod', protocol: 'tcp', target: `${sentinel.status.podIP}:${check.sentinelPort}`, expected: 'denied' },
        ];
        const run = (p: Probe[], timeoutMs: number) => runProbes(exec, p, { command: check.probeCommand, timeoutMs, concurrency: p.length });
        const [smoke, isolated] = await run(probes, check.deniedTimeoutMs);
        let answered = smoke!;
        // A Service's endpoints can trail a pod's readiness by a moment: retried, bounded.
        for (let attempt = 1; !answered.ok && attempt < check.smokeAttempts; attempt++) {
          await new Promise((r) => setTimeout(r, 250));
          [answered] = (await run([probes[0]!], 1_000)) as [Cell];
        }
        if (!answered.ok) {
          throw ApplicationFailure.retryable(
            `the app of tenant ${input.tenantId} does not answer through its Service ${service} from inside the cluster ` +
              `(${check.smokeAttempts} attempts): ${answered.detail}. Check the pod (kubectl -n ${input.namespace} logs ${source.pod}) ` +
              `and that the Service selects its ready pods`,
            'AppNotAnswering',
          );
        }
        if (!isolated!.ok) {
          throw ApplicationFailure.retryable(
            `tenant ${input.tenantId} is not isolated: ${short(isolated!)}. Its NetworkPolicies are not enforced on the node of ${source.pod}, or were changed`,
            'IsolationFailed',
          );
        }
        const at = new Date().toISOString();
        await sql.query(
          `UPDATE tenants SET metadata = metadata || jsonb_build_object('isolation', jsonb_build_object('status', 'verified', 'at', $2::text)), updated_at = now() WHERE id = $1::uuid`,
          [input.tenantId, at],
        );
        return { status: 'verified' as const, at, cells: probes.length };
      });
    },
  };
}
