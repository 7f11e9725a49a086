/**
 * The API server's audit log, read back to split the Kubernetes requests of a benchmark phase by
 * client: the API server's /metrics counters mix every client together (the provisioner, Helm, the
 * controllers that make ReplicaSets and Pods, kwok), the audit log names each request's user agent
 * and object. The local stack writes it (scripts/stack.sh, `KUBE_AUDIT_LOG` in .stack/env) at level
 * Metadata: one JSON object per line, without the request bodies.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';

/** Who sent a request: the provisioner's adapter (and its watches), a helm process, anyone else. */
export type AuditClient = 'provisioner' | 'helm' | 'other';

export const AUDIT_CLIENTS: readonly AuditClient[] = ['provisioner', 'helm', 'other'];

/** Requests to count: received in [from, to) (ms since the epoch), in one of these namespaces. */
export interface AuditWindow {
  from: number;
  to: number;
  namespaces: ReadonlySet<string>;
}

export interface ClientRequests {
  total: number;
  /** By the audit log's verb: get, list, watch, create, update, patch, delete, … */
  byVerb: Record<string, number>;
}

export type AuditCounts = Record<AuditClient, ClientRequests>;

/** The fields of an audit event that the counting reads. */
interface AuditEvent {
  stage?: string;
  verb?: string;
  userAgent?: string;
  requestReceivedTimestamp?: string;
  objectRef?: { resource?: string; namespace?: string; name?: string };
}

/** The client a user agent names; the provisioner sets its own (src/k8s/client.ts), Helm sends `Helm/<version>`. */
export function auditClient(userAgent: string | undefined): AuditClient {
  if (userAgent?.startsWith('tenant-provisioner/')) return 'provisioner';
  if (userAgent && /^helm/i.test(userAgent)) return 'helm';
  return 'other';
}

/**
 * The namespace a request belongs to: its object's, or for a Namespace itself, the object's name
 * (cluster-scoped requests and discovery belong to none; they count for the phase whose client
 * sent them).
 */
export function auditNamespace(event: AuditEvent): string | undefined {
  const ref = event.objectRef;
  if (!ref) return undefined;
  return ref.resource === 'namespaces' ? (ref.name ?? ref.namespace) : ref.namespace;
}

/**
 * The log and the backups kube-apiserver rotated out of it (`audit-<time>.log` beside `audit.log`),
 * oldest first, leaving out backups last written before `since`: they cannot hold a later request.
 */
export async function auditLogFiles(file: string, since = 0): Promise<string[]> {
  const dir = path.dirname(file);
  const ext = path.extname(file);
  const prefix = `${path.basename(file, ext)}-`;
  const names = await readdir(dir).catch(() => [] as string[]);
  const backups: Array<{ file: string; mtime: number }> = [];
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith(ext)) continue;
    const full = path.join(dir, name);
    const mtime = (await stat(full)).mtimeMs;
    if (mtime >= since) backups.push({ file: full, mtime });
  }
  backups.sort((a, b) => a.mtime - b.mtime);
  const files = backups.map((b) => b.file);
  const current = await stat(file).catch(() => undefined);
  if (current?.isFile()) files.push(file);
  return files;
}

const emptyCounts = (): AuditCounts => ({
  provisioner: { total: 0, byVerb: {} },
  helm: { total: 0, byVerb: {} },
  other: { total: 0, byVerb: {} },
});

/**
 * Counts the completed requests of each window by client and verb, in one pass over the log and
 * its backups, a line at a time (a 500-tenant run writes hundreds of megabytes).
 */
export async function countAuditRequests(file: string, windows: readonly AuditWindow[]): Promise<AuditCounts[]> {
  const counts = windows.map(emptyCounts);
  const since = Math.min(...windows.map((w) => w.from));
  for (const f of await auditLogFiles(file, since)) {
    const lines = createInterface({ input: createReadStream(f, { encoding: 'utf8' }), crlfDelay: Infinity });
    for await (const line of lines) {
      // Most lines are other stages or other clients' background; skip them before parsing.
      if (!line.includes('"ResponseComplete"')) continue;
      let event: AuditEvent;
      try {
        event = JSON.parse(line) as AuditEvent;
      } catch {
        continue; // a line cut short by rotation or by a write in progress
      }
      if (event.stage !== 'ResponseComplete') continue;
      const ns = auditNamespace(event);
      const client = auditClient(event.userAgent);
      // A request that names no namespace (API discovery, a cluster-wide list) is the window's when
      // one of its own clients sent it: the benchmark runs one phase at a time.
      if (ns === undefined && client === 'other') continue;
      const at = Date.parse(event.requestReceivedTimestamp ?? '');
      windows.forEach((w, i) => {
        if (!(at >= w.from && at < w.to) || (ns !== undefined && !w.namespaces.has(ns))) return;
        const c = counts[i]![client];
        const verb = event.objectRef ? (event.verb ?? 'unknown') : 'discovery';
        c.total += 1;
        c.byVerb[verb] = (c.byVerb[verb] ?? 0) + 1;
      });
    }
  }
  return counts;
}
