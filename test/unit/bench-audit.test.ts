/**
 * The benchmark's reading of the API server's audit log: a small log (and a rotated backup) in a
 * temporary directory, in the shape kube-apiserver writes at level Metadata.
 */
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { auditClient, auditLogFiles, countAuditRequests, type AuditWindow } from '../../src/bench/audit';

const NS_A = 'tenant-aaaa';
const NS_B = 'tenant-bbbb';
const PROVISIONER = 'tenant-provisioner/0.1.0';
const HELM = 'Helm/3.22.0';
const CONTROLLER = 'kube-controller-manager/v1.34.4 (linux/amd64) kubernetes/1234567/system:serviceaccount:kube-system:replicaset-controller';
const KWOK = 'kwok/v0.8.0 (linux/amd64) kwok/unknown';

const T0 = Date.parse('2026-11-27T20:00:00Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString().replace('Z', '123Z');

interface Ev {
  s: number;
  verb: string;
  ua: string;
  /** Absent for a request to a non-resource URL (API discovery). */
  resource?: string;
  namespace?: string;
  name?: string;
  stage?: string;
}

function line(e: Ev): string {
  return JSON.stringify({
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `${e.s}-${e.verb}-${e.resource}`,
    stage: e.stage ?? 'ResponseComplete',
    requestURI: '/irrelevant',
    verb: e.verb,
    user: { username: 'kubernetes-admin' },
    userAgent: e.ua,
    ...(e.resource ? { objectRef: { resource: e.resource, ...(e.namespace ? { namespace: e.namespace } : {}), ...(e.name ? { name: e.name } : {}), apiVersion: 'v1' } } : {}),
    responseStatus: { metadata: {}, code: 200 },
    requestReceivedTimestamp: at(e.s),
    stageTimestamp: at(e.s),
  });
}

let dir: string;
let log: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'bench-audit-'));
  log = path.join(dir, 'audit.log');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const window = (from: number, to: number, ...namespaces: string[]): AuditWindow => ({ from: T0 + from * 1000, to: T0 + to * 1000, namespaces: new Set(namespaces) });

describe('auditClient', () => {
  it('tells the provisioner, helm in any case, and everyone else apart', () => {
    expect(auditClient(PROVISIONER)).toBe('provisioner');
    expect(auditClient(HELM)).toBe('helm');
    expect(auditClient('helm/v3.22.0 (linux/amd64)')).toBe('helm');
    expect(auditClient(CONTROLLER)).toBe('other');
    expect(auditClient(KWOK)).toBe('other');
    expect(auditClient('node-fetch/1.0 (+https://github.com/bitinn/node-fetch)')).toBe('other');
    expect(auditClient(undefined)).toBe('other');
  });
});

describe('countAuditRequests', () => {
  it('counts completed requests in the window and the namespaces, by client and verb', async () => {
    const events: Ev[] = [
      // The namespace itself: attributed by its name.
      { s: 1, verb: 'patch', ua: PROVISIONER, resource: 'namespaces', name: NS_A },
      { s: 1, verb: 'patch', ua: PROVISIONER, resource: 'networkpolicies', namespace: NS_A, name: 'deny-all' },
      { s: 1, verb: 'patch', ua: PROVISIONER, resource: 'networkpolicies', namespace: NS_A, stage: 'ResponseStarted' },
      { s: 2, verb: 'get', ua: PROVISIONER, resource: 'namespaces', name: NS_B },
      { s: 3, verb: 'create', ua: HELM, resource: 'deployments', namespace: NS_A },
      { s: 3, verb: 'create', ua: HELM, resource: 'configmaps', namespace: NS_B },
      { s: 4, verb: 'watch', ua: HELM, resource: 'deployments', namespace: NS_B },
      { s: 4, verb: 'create', ua: CONTROLLER, resource: 'replicasets', namespace: NS_A },
      { s: 5, verb: 'patch', ua: KWOK, resource: 'pods', namespace: NS_A, name: 'app-1' },
      // Naming no namespace: counted when the phase's own clients sent it (API discovery has no object).
      { s: 5, verb: 'list', ua: PROVISIONER, resource: 'configmaps' },
      { s: 6, verb: 'get', ua: HELM },
      // Not counted: another namespace, someone else's cluster-wide request or discovery, before the window, at its end.
      { s: 5, verb: 'patch', ua: PROVISIONER, resource: 'secrets', namespace: 'tenant-other' },
      { s: 5, verb: 'get', ua: CONTROLLER, resource: 'nodes', name: 'kwok-node-0' },
      { s: 6, verb: 'get', ua: CONTROLLER },
      { s: -1, verb: 'patch', ua: PROVISIONER, resource: 'secrets', namespace: NS_A },
      { s: 10, verb: 'patch', ua: PROVISIONER, resource: 'secrets', namespace: NS_A },
    ];
    // A line cut short by a rotation is skipped, not fatal.
    await writeFile(log, [...events.map(line), '{"kind":"Event","stage":"ResponseComplete","verb":"pat'].join('\n') + '\n');

    const [counts] = await countAuditRequests(log, [window(0, 10, NS_A, NS_B)]);
    expect(counts).toEqual({
      provisioner: { total: 4, byVerb: { patch: 2, get: 1, list: 1 } },
      helm: { total: 4, byVerb: { create: 2, watch: 1, discovery: 1 } },
      other: { total: 2, byVerb: { create: 1, patch: 1 } },
    });
  });

  it('counts several windows in one pass, each with its own namespaces', async () => {
    await writeFile(log, [
      line({ s: 1, verb: 'patch', ua: PROVISIONER, resource: 'secrets', namespace: NS_A }),
      line({ s: 2, verb: 'patch', ua: PROVISIONER, resource: 'secrets', namespace: NS_B }),
      line({ s: 12, verb: 'patch', ua: PROVISIONER, resource: 'secrets', namespace: NS_B }),
      line({ s: 13, verb: 'create', ua: HELM, resource: 'services', namespace: NS_B }),
    ].join('\n'));
    const [first, second] = await countAuditRequests(log, [window(0, 10, NS_A), window(10, 20, NS_B)]);
    expect([first!.provisioner.total, first!.helm.total]).toEqual([1, 0]);
    expect([second!.provisioner.total, second!.helm.total]).toEqual([1, 1]);
  });

  it('reads the rotated backups beside the log, and skips those last written before the window', async () => {
    const backup = path.join(dir, 'audit-2026-11-27T20-00-05.000.log');
    const stale = path.join(dir, 'audit-2026-11-27T19-00-00.000.log');
    await writeFile(backup, line({ s: 2, verb: 'patch', ua: PROVISIONER, resource: 'secrets', namespace: NS_A }) + '\n');
    // Its event would count if the file were read: the file's time says it cannot be in the window.
    await writeFile(stale, line({ s: 3, verb: 'create', ua: HELM, resource: 'services', namespace: NS_A }) + '\n');
    await utimes(stale, new Date(T0 - 3_600_000), new Date(T0 - 3_600_000));
    await utimes(backup, new Date(T0 + 5_000), new Date(T0 + 5_000));
    await writeFile(log, line({ s: 6, verb: 'get', ua: PROVISIONER, resource: 'secrets', namespace: NS_A }) + '\n');
    await writeFile(path.join(dir, 'other.log'), line({ s: 4, verb: 'get', ua: PROVISIONER, resource: 'secrets', namespace: NS_A }) + '\n');

    expect(await auditLogFiles(log, T0)).toEqual([backup, log]);
    const [counts] = await countAuditRequests(log, [window(0, 10, NS_A)]);
    expect(counts!.provisioner).toEqual({ total: 2, byVerb: { patch: 1, get: 1 } });
    expect(counts!.helm.total).toBe(0);
  });

  it('finds nothing in a log that is not there', async () => {
    expect(await auditLogFiles(path.join(dir, 'missing', 'audit.log'))).toEqual([]);
    const [counts] = await countAuditRequests(path.join(dir, 'missing', 'audit.log'), [window(0, 10, NS_A)]);
    expect(counts!.provisioner.total + counts!.helm.total + counts!.other.total).toBe(0);
  });
});
