/**
 * Isolation proven by traffic: a truth table of probes (from a pod, to an address, over TCP, UDP,
 * HTTP or DNS), each with the verdict the tenant's policies promise, run from inside the pods the
 * way the upstream NetworkPolicy e2e framework does (exec of a probe command, 1 s timeout, a
 * bounded number at once).
 *
 * A probe that was refused (TCP reset, ICMP port unreachable) reached its target: the enforcer
 * drops what a policy denies, so a refusal where "denied" is expected counts as a mismatch, never
 * as denied. That is what makes a "denied" cell mean something even for a port nobody serves.
 */
import type { Egress } from '../k8s/network-policies';
import type { PodExec, PodRef } from './exec';

export type Protocol = 'tcp' | 'udp' | 'http' | 'dns';
export type Verdict = 'allowed' | 'denied';
/** `reached`: refused by the target, so not stopped by a policy; `error`: the probe could not run. */
export type Observation = Verdict | 'reached' | 'error';

export interface Probe {
  from: string;
  source: PodRef;
  to: string;
  protocol: Protocol;
  /** host:port */
  target: string;
  /** The name a `dns` probe looks up. */
  dnsName?: string;
  expected: Verdict;
}

export interface Cell extends Probe {
  observed: Observation;
  /** The probe's own line, or why it could not run. */
  detail: string;
  ok: boolean;
}

/** A tenant as the probes see it: a ready pod of its app and its Service. */
export interface TenantEndpoints {
  label: string;
  namespace: string;
  egress: Egress;
  pod: PodRef & { ip: string };
  /** The node its pod runs on. */
  node?: string;
  serviceIp: string;
  httpPort: number;
  udpPort?: number;
}

export interface HostPort {
  label: string;
  ip: string;
  port: number;
}

/** Everything around the tenant under test that the table probes. */
export interface World {
  /** Other tenants: nothing of theirs is reachable, and nothing of theirs reaches the subject. */
  others: TenantEndpoints[];
  dns: { serviceIp: string; name: string };
  /** kube-system pods on ports a tenant may not use (everything but DNS). */
  kubeSystem: HostPort[];
  /** A pod of the ingress controller (the ingress namespace, the controller's labels). */
  ingress?: PodRef;
  /** Pods of namespaces that are neither the ingress nor a tenant: none reach the subject. */
  strangers: PodRef[];
  /** The API server: the `kubernetes` Service and its endpoints. */
  apiServer: HostPort[];
  /** A host outside the cluster (a test's network namespace); reachable as the plan's egress says. */
  outside?: { ip: string; httpPort: number; udpPort?: number };
}

const at = (ip: string, port: number) => `${ip}:${port}`;

/** The probes that prove one tenant's isolation in `world`. */
export function isolationProbes(a: TenantEndpoints, world: World): Probe[] {
  const probes: Probe[] = [];
  const from = (source: PodRef, label: string) => (to: string, protocol: Protocol, target: string, expected: Verdict, dnsName?: string) =>
    probes.push({ from: label, source, to, protocol, target, expected, ...(dnsName ? { dnsName } : {}) });
  const fromA = from(a.pod, `${a.label} pod`);

  // Inside the tenant: its own pod and Service.
  fromA(`${a.label} pod`, 'tcp', at(a.pod.ip, a.httpPort), 'allowed');
  fromA(`${a.label} Service`, 'http', at(a.serviceIp, a.httpPort), 'allowed');
  if (a.udpPort) fromA(`${a.label} pod`, 'udp', at(a.pod.ip, a.udpPort), 'allowed');

  for (const b of world.others) {
    fromA(`${b.label} pod`, 'tcp', at(b.pod.ip, b.httpPort), 'denied');
    fromA(`${b.label} Service`, 'tcp', at(b.serviceIp, b.httpPort), 'denied');
    if (b.udpPort) {
      fromA(`${b.label} pod`, 'udp', at(b.pod.ip, b.udpPort), 'denied');
      fromA(`${b.label} Service`, 'udp', at(b.serviceIp, b.udpPort), 'denied');
    }
    const fromB = from(b.pod, `${b.label} pod`);
    fromB(`${a.label} Service`, 'tcp', at(a.serviceIp, a.httpPort), 'denied');
    fromB(`${a.label} pod`, 'tcp', at(a.pod.ip, a.httpPort), 'denied');
  }

  // DNS over UDP (a real lookup) and TCP, to the kube-dns Service.
  fromA('kube-dns', 'dns', at(world.dns.serviceIp, 53), 'allowed', world.dns.name);
  fromA('kube-dns', 'tcp', at(world.dns.serviceIp, 53), 'allowed');
  for (const k of world.kubeSystem) fromA(k.label, 'tcp', at(k.ip, k.port), 'denied');

  if (world.ingress) {
    const fromIngress = from(world.ingress, 'ingress controller');
    fromIngress(`${a.label} Service`, 'http', at(a.serviceIp, a.httpPort), 'allowed');
    if (a.udpPort) fromIngress(`${a.label} pod`, 'udp', at(a.pod.ip, a.udpPort), 'denied');
  }
  for (const s of world.strangers) {
    const fromStranger = from(s, `${s.namespace} pod`);
    fromStranger(`${a.label} Service`, 'tcp', at(a.serviceIp, a.httpPort), 'denied');
    if (a.udpPort) fromStranger(`${a.label} pod`, 'udp', at(a.pod.ip, a.udpPort), 'denied');
  }

  for (const api of world.apiServer) fromA(api.label, 'tcp', at(api.ip, api.port), 'denied');

  if (world.outside) {
    const expected: Verdict = a.egress === 'internet' ? 'allowed' : 'denied';
    fromA('outside host', 'tcp', at(world.outside.ip, world.outside.httpPort), expected);
    if (world.outside.udpPort) fromA('outside host', 'udp', at(world.outside.ip, world.outside.udpPort), expected);
  }
  return probes;
}

/** What a probe's exit code and line say: answered, dropped (denied), refused (reached) or broken. */
export function observe(result: { exitCode?: number; stdout: string; stderr: string; error?: string }): { observed: Observation; detail: string } {
  const line = result.stdout.trim().split('\n').pop() ?? '';
  if (result.error) return { observed: 'error', detail: result.error };
  if (result.exitCode === 0) return { observed: 'allowed', detail: line };
  if (result.exitCode === 1) return { observed: /refused|unreachable|reset/i.test(line) ? 'reached' : 'denied', detail: line };
  return { observed: 'error', detail: `probe exited ${result.exitCode ?? '?'}: ${(result.stderr.trim() || line).slice(0, 300)}` };
}

export interface RunOptions {
  /** The probe command in the source pods' image, e.g. ['/tenant-app', 'probe']. */
  command: string[];
  /** Each probe's own timeout (the upstream framework's is 1 s). */
  timeoutMs?: number;
  /** Probes in flight at once. */
  concurrency?: number;
}

/** Runs every probe once, at most `concurrency` at a time, and judges each against its expectation. */
export async function runProbes(exec: PodExec, probes: Probe[], options: RunOptions): Promise<Cell[]> {
  const timeoutMs = options.timeoutMs ?? 1_000;
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 8, 32));
  const cells: Cell[] = new Array<Cell>(probes.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < probes.length; i = next++) {
      const p = probes[i]!;
      const args = [...options.command, p.protocol, p.target, '--timeout', `${timeoutMs}ms`, ...(p.dnsName ? ['--name', p.dnsName] : [])];
      // The exec's own deadline: the probe's timeout plus the round trips through API server and kubelet.
      const result = await exec(p.source, args, timeoutMs + 10_000);
      const { observed, detail } = observe(result);
      cells[i] = { ...p, observed, detail, ok: observed === p.expected };
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, probes.length) }, worker));
  return cells;
}

/** The table as text: one row per probe, expected against observed. */
export function formatTable(cells: Cell[]): string {
  const header = ['FROM', 'TO', 'PROTO', 'TARGET', 'EXPECTED', 'OBSERVED', ''];
  const rows = cells.map((c) => [c.from, c.to, c.protocol.toUpperCase(), c.target, c.expected, c.observed, c.ok ? 'ok' : 'MISMATCH']);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  const bad = cells.filter((c) => !c.ok);
  return [
    line(header),
    ...rows.map(line),
    '',
    `${cells.length - bad.length}/${cells.length} cells as expected`,
    ...bad.map((c) => `MISMATCH ${c.from} -> ${c.to} ${c.protocol} ${c.target}: expected ${c.expected}, observed ${c.observed} (${c.detail})`),
  ].join('\n');
}
