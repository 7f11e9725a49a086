/**
 * The single adapter around the `helm` binary. Each call has a hard timeout, can be aborted (an
 * activity passes its cancellation signal), and turns Helm's stderr into an error a person can
 * act on, marked retryable or not.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { loadKubeConfig } from '../k8s/client';
import { watcherFor } from '../k8s/watch';
import { NotReadyError, UnjudgedKindError, createReadinessWaiter, objectsToWatch, type ReadinessWaiter } from './readiness';

export interface HelmOptions {
  /** Path of the helm binary (default: `helm` on PATH). */
  binary?: string;
  /** Kubeconfig file for helm; unset means helm's own default (KUBECONFIG, or in-cluster). */
  kubeconfig?: string;
  /**
   * Where Helm keeps release records (default `configmap`): the provisioner's role grants no
   * general Secret access, so its releases must not live in Secrets.
   */
  driver?: 'configmap' | 'secret';
  /**
   * Judges the release's readiness after an install or upgrade (default: watches through the same
   * kubeconfig helm uses).
   */
  readiness?: ReadinessWaiter;
}

export interface UpgradeInstallRequest {
  release: string;
  namespace: string;
  chart: string;
  values: Record<string, unknown>;
  /** How long Helm may wait for the release's resources to become ready. */
  timeoutSeconds: number;
  signal?: AbortSignal;
  /** Called every few seconds while Helm runs or the release is awaited (activities heartbeat from here). */
  onProgress?: (elapsedMs: number) => void;
}

export interface ReleaseInfo {
  name: string;
  namespace: string;
  revision: number;
  status: string;
}

/** Outcome of `recoverPending`. */
export type PendingRecovery =
  | { action: 'none' }
  /** A fresh lock: possibly a helm that is still running elsewhere; try again later. */
  | { action: 'wait'; status: string; ageSeconds: number }
  | { action: 'rolled-back'; from: string; toRevision: number }
  | { action: 'uninstalled'; from: string };

export interface Helm {
  upgradeInstall(req: UpgradeInstallRequest): Promise<ReleaseInfo>;
  /** True when a release was uninstalled, false when there was none. */
  uninstall(req: {
    release: string;
    namespace: string;
    timeoutSeconds: number;
    signal?: AbortSignal;
    onProgress?: (elapsedMs: number) => void;
  }): Promise<boolean>;
  status(release: string, namespace: string): Promise<ReleaseInfo | undefined>;
  /** The user-supplied values of the deployed release (`helm get values`), undefined without a release. */
  values(release: string, namespace: string): Promise<Record<string, unknown> | undefined>;
  /**
   * Frees a release left locked (`pending-install`, `pending-upgrade`, `pending-rollback`) by a
   * helm that was killed: rolls back to the last good revision, or uninstalls a first install that
   * never completed. A lock younger than `staleAfterSeconds` may belong to a helm still running
   * (say, orphaned by a worker that was killed) and is left alone.
   */
  recoverPending(req: { release: string; namespace: string; timeoutSeconds: number; staleAfterSeconds: number; signal?: AbortSignal }): Promise<PendingRecovery>;
}

/**
 * The longest `upgradeInstall` with timeout T can legitimately take: the install or upgrade and
 * the wait for readiness share T, and on failure the rollback (or the uninstall of a failed first
 * install) may wait up to T again, and is killed a minute after that. Callers' deadlines (activity
 * timeout, worker shutdown grace) must be at least this long.
 */
export function helmWorstCaseSeconds(timeoutSeconds: number): number {
  return 2 * timeoutSeconds + 60;
}

export class HelmError extends Error {
  override name = 'HelmError';
  constructor(
    message: string,
    /** False when running the same command again cannot succeed (bad chart, bad values, forbidden). */
    readonly retryable: boolean,
    readonly stderr: string,
  ) {
    super(message);
  }
}

interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

const FINAL_PATTERNS: RegExp[] = [
  /values don't meet the specifications of the schema/i,
  /parse error|yaml: |error converting YAML|template: /i,
  /is forbidden|forbidden: /i,
  /Chart\.yaml file is missing|path .* not found|no such file or directory/i,
  /is invalid: /i,
  /exceeded quota/i,
];

/** Classifies a failed helm run; readiness timeouts and API hiccups are worth another attempt. */
export function isRetryableHelmFailure(stderr: string): boolean {
  return !FINAL_PATTERNS.some((p) => p.test(stderr));
}

/** Keeps the last lines of stderr, which carry Helm's reason. */
function summarize(stderr: string): string {
  const lines = stderr.trim().split('\n').filter(Boolean);
  return lines.slice(-3).join(' | ').slice(0, 800) || 'no output';
}

export function createHelm(options: HelmOptions = {}): Helm {
  const binary = options.binary ?? 'helm';
  const baseArgs = options.kubeconfig ? ['--kubeconfig', options.kubeconfig] : [];
  const env = { ...process.env, HELM_DRIVER: options.driver ?? 'configmap' };

  function run(args: string[], timeoutMs: number, signal?: AbortSignal, onProgress?: (ms: number) => void): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const child = spawn(binary, [...baseArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
      let stdout = '';
      let stderr = '';
      let settled = false;
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearInterval(ticker);
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      // Helm's own --timeout bounds its waiting; this one bounds a helm that hangs anyway, and
      // is never shorter than helm's own worst case (a kill mid-rollback leaves the release locked).
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(() => reject(new HelmError(`helm ${args[0]} did not finish within ${Math.round(timeoutMs / 1000)} s`, true, stderr)));
      }, timeoutMs);
      const ticker = setInterval(() => onProgress?.(Date.now() - started), 5_000);
      const onAbort = () => {
        child.kill('SIGTERM');
        finish(() => reject(new HelmError(`helm ${args[0]} was cancelled`, true, stderr)));
      };
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
      child.on('error', (err: NodeJS.ErrnoException) => {
        const hint = err.code === 'ENOENT' ? ` (no helm binary at "${binary}": set HELM_BIN or put helm on PATH)` : '';
        finish(() => reject(new HelmError(`cannot run helm: ${err.message}${hint}`, false, '')));
      });
      child.on('close', (code) => finish(() => resolve({ stdout, stderr, code })));
    });
  }

  function parseRelease(stdout: string): ReleaseInfo {
    const parsed = JSON.parse(stdout) as { name: string; namespace: string; version: number; info?: { status?: string } };
    return { name: parsed.name, namespace: parsed.namespace, revision: parsed.version, status: parsed.info?.status ?? 'unknown' };
  }

  let waiter = options.readiness;
  const readiness = (): ReadinessWaiter => (waiter ??= createReadinessWaiter(watcherFor(loadKubeConfig(options.kubeconfig))));

  type HistoryEntry = { revision: number; status: string; updated: string };

  /** The release's revisions, oldest first; undefined when there is no such release. */
  async function history(release: string, namespace: string, signal?: AbortSignal): Promise<HistoryEntry[] | undefined> {
    const res = await run(['history', release, '--namespace', namespace, '--max', '20', '--output', 'json'], 60_000, signal);
    if (res.code !== 0) {
      if (/not found/i.test(res.stderr)) return undefined;
      throw new HelmError(`helm history ${release} in ${namespace} failed: ${summarize(res.stderr)}`, isRetryableHelmFailure(res.stderr), res.stderr);
    }
    return (JSON.parse(res.stdout || '[]') as HistoryEntry[]).sort((a, b) => a.revision - b.revision);
  }

  /**
   * Replaces the latest revision with the last good one before it (deployed or superseded), or
   * uninstalls the release when it never had one. Both wait for readiness, as --atomic's did.
   */
  async function restore(
    release: string,
    namespace: string,
    revisions: HistoryEntry[],
    timeoutSeconds: number,
    signal?: AbortSignal,
    onProgress?: (ms: number) => void,
  ): Promise<{ toRevision: number } | { uninstalled: true }> {
    const latest = revisions[revisions.length - 1]!;
    const good = [...revisions].reverse().find((h) => h.revision < latest.revision && (h.status === 'deployed' || h.status === 'superseded'));
    if (good) {
      const rb = await run(
        ['rollback', release, String(good.revision), '--namespace', namespace, '--wait', '--timeout', `${timeoutSeconds}s`, '--history-max', '5'],
        (timeoutSeconds + 60) * 1000,
        signal,
        onProgress,
      );
      if (rb.code !== 0) {
        throw new HelmError(`helm rollback ${release} in ${namespace} to revision ${good.revision} failed: ${summarize(rb.stderr)}`, isRetryableHelmFailure(rb.stderr), rb.stderr);
      }
      return { toRevision: good.revision };
    }
    const un = await run(['uninstall', release, '--namespace', namespace, '--wait', '--timeout', `${timeoutSeconds}s`], (timeoutSeconds + 60) * 1000, signal, onProgress);
    if (un.code !== 0 && !/not found/i.test(un.stderr)) {
      throw new HelmError(`helm uninstall of ${release} in ${namespace} failed: ${summarize(un.stderr)}`, isRetryableHelmFailure(un.stderr), un.stderr);
    }
    return { uninstalled: true };
  }

  /**
   * What --atomic did after a failure: the revision this call made (`revision`), or a revision
   * helm itself left `failed` (undefined), is rolled back, or uninstalled if it was the first.
   * Never cancelled by the activity's signal (a half-undone release is worse); bounded instead.
   * Returns what was done, for the error message.
   */
  async function undoRelease(release: string, namespace: string, revision: number | undefined, timeoutSeconds: number, onProgress?: (ms: number) => void): Promise<string> {
    try {
      const revisions = await history(release, namespace);
      const latest = revisions?.[revisions.length - 1];
      if (!revisions || !latest) return '';
      if (revision === undefined ? latest.status !== 'failed' : latest.revision !== revision) return '';
      const done = await restore(release, namespace, revisions, timeoutSeconds, undefined, onProgress);
      return 'toRevision' in done ? `rolled back to revision ${done.toRevision}` : 'the failed first install was uninstalled';
    } catch (err) {
      return `undoing it failed too: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  return {
    async upgradeInstall(req) {
      const started = Date.now();
      const dir = await mkdtemp(path.join(os.tmpdir(), 'helm-values-'));
      let res: RunResult;
      try {
        const valuesFile = path.join(dir, 'values.json');
        await writeFile(valuesFile, JSON.stringify(req.values), { mode: 0o600 });
        const args = [
          'upgrade', req.release, req.chart,
          '--install',
          '--namespace', req.namespace,
          '--values', valuesFile,
          // No --wait/--atomic: helm would poll readiness every 2 s. Readiness is awaited below from
          // watches, and a release that does not become ready is rolled back there, as --atomic does.
          '--timeout', `${req.timeoutSeconds}s`,
          '--history-max', '5',
          '--output', 'json',
        ];
        // The install and the wait share the timeout; without --wait helm itself takes a second.
        res = await run(args, req.timeoutSeconds * 1000, req.signal, req.onProgress);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      if (res.code !== 0) {
        const undo = await undoRelease(req.release, req.namespace, undefined, req.timeoutSeconds, req.onProgress);
        throw new HelmError(
          `helm upgrade --install ${req.release} in ${req.namespace} failed: ${summarize(res.stderr)}${undo ? `; ${undo}` : ''}`,
          isRetryableHelmFailure(res.stderr),
          res.stderr,
        );
      }
      const release = parseRelease(res.stdout);
      const ticker = setInterval(() => req.onProgress?.(Date.now() - started), 5_000);
      try {
        const manifest = (JSON.parse(res.stdout) as { manifest?: string }).manifest ?? '';
        const objects = objectsToWatch(loadAllYaml(manifest));
        await readiness().waitReady({
          namespace: req.namespace,
          objects,
          timeoutMs: Math.max(0, started + req.timeoutSeconds * 1000 - Date.now()),
          signal: req.signal,
        });
      } catch (err) {
        const undo = await undoRelease(req.release, req.namespace, release.revision, req.timeoutSeconds, req.onProgress);
        const reason = err instanceof Error ? err.message : String(err);
        const what = err instanceof NotReadyError ? `did not become ready within ${req.timeoutSeconds} s (${reason})` : `could not be awaited: ${reason}`;
        // A chart with kinds the wait cannot judge will not do better on another attempt.
        throw new HelmError(`release ${req.release} in ${req.namespace} ${what}${undo ? `; ${undo}` : ''}`, !(err instanceof UnjudgedKindError), '');
      } finally {
        clearInterval(ticker);
      }
      return release;
    },

    async uninstall(req) {
      const res = await run(
        ['uninstall', req.release, '--namespace', req.namespace, '--wait', '--timeout', `${req.timeoutSeconds}s`],
        (req.timeoutSeconds + 60) * 1000,
        req.signal,
        req.onProgress,
      );
      if (res.code === 0) return true;
      if (/not found/i.test(res.stderr)) return false;
      throw new HelmError(
        `helm uninstall ${req.release} in ${req.namespace} failed: ${summarize(res.stderr)}`,
        isRetryableHelmFailure(res.stderr),
        res.stderr,
      );
    },

    async values(release, namespace) {
      const res = await run(['get', 'values', release, '--namespace', namespace, '--output', 'json'], 60_000);
      if (res.code === 0) return (JSON.parse(res.stdout || 'null') as Record<string, unknown> | null) ?? {};
      if (/not found/i.test(res.stderr)) return undefined;
      throw new HelmError(`helm get values ${release} in ${namespace} failed: ${summarize(res.stderr)}`, isRetryableHelmFailure(res.stderr), res.stderr);
    },

    async recoverPending(req) {
      const revisions = await history(req.release, req.namespace, req.signal);
      const latest = revisions?.[revisions.length - 1];
      if (!revisions || !latest || !latest.status.startsWith('pending-')) return { action: 'none' };
      const ageSeconds = Math.max(0, Math.round((Date.now() - Date.parse(latest.updated)) / 1000));
      if (!(ageSeconds >= req.staleAfterSeconds)) return { action: 'wait', status: latest.status, ageSeconds };
      // Nothing good before the lock: the release is only the lock; removing it lets the install start over.
      const done = await restore(req.release, req.namespace, revisions, req.timeoutSeconds, req.signal);
      return 'toRevision' in done ? { action: 'rolled-back', from: latest.status, toRevision: done.toRevision } : { action: 'uninstalled', from: latest.status };
    },

    async status(release, namespace) {
      const res = await run(['status', release, '--namespace', namespace, '--output', 'json'], 60_000);
      if (res.code === 0) return parseRelease(res.stdout);
      if (/not found/i.test(res.stderr)) return undefined;
      throw new HelmError(`helm status ${release} in ${namespace} failed: ${summarize(res.stderr)}`, isRetryableHelmFailure(res.stderr), res.stderr);
    },
  };
}
