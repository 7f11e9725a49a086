/**
 * The single adapter around the `helm` binary. Each call has a hard timeout, can be aborted (an
 * activity passes its cancellation signal), and turns Helm's stderr into an error a person can
 * act on, marked retryable or not.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

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
}

export interface UpgradeInstallRequest {
  release: string;
  namespace: string;
  chart: string;
  values: Record<string, unknown>;
  /** How long Helm may wait for the release's resources to become ready. */
  timeoutSeconds: number;
  signal?: AbortSignal;
  /** Called every few seconds while Helm runs (activities heartbeat from here). */
  onProgress?: (elapsedMs: number) => void;
}

export interface ReleaseInfo {
  name: string;
  namespace: string;
  revision: number;
  status: string;
}

export interface Helm {
  upgradeInstall(req: UpgradeInstallRequest): Promise<ReleaseInfo>;
  /** True when a release was uninstalled, false when there was none. */
  uninstall(req: { release: string; namespace: string; timeoutSeconds: number; signal?: AbortSignal }): Promise<boolean>;
  status(release: string, namespace: string): Promise<ReleaseInfo | undefined>;
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
      // Helm's own --timeout bounds its waiting; this one bounds a helm that hangs anyway.
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

  return {
    async upgradeInstall(req) {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'helm-values-'));
      try {
        const valuesFile = path.join(dir, 'values.json');
        await writeFile(valuesFile, JSON.stringify(req.values), { mode: 0o600 });
        const args = [
          'upgrade', req.release, req.chart,
          '--install',
          '--namespace', req.namespace,
          '--values', valuesFile,
          // --atomic waits for readiness and rolls a failed upgrade back (a failed first install is
          // uninstalled), so the release is never left half-applied.
          '--atomic',
          '--timeout', `${req.timeoutSeconds}s`,
          '--history-max', '5',
          '--output', 'json',
        ];
        const res = await run(args, (req.timeoutSeconds + 60) * 1000, req.signal, req.onProgress);
        if (res.code !== 0) {
          throw new HelmError(
            `helm upgrade --install ${req.release} in ${req.namespace} failed: ${summarize(res.stderr)}`,
            isRetryableHelmFailure(res.stderr),
            res.stderr,
          );
        }
        return parseRelease(res.stdout);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },

    async uninstall(req) {
      const res = await run(
        ['uninstall', req.release, '--namespace', req.namespace, '--wait', '--timeout', `${req.timeoutSeconds}s`],
        (req.timeoutSeconds + 60) * 1000,
        req.signal,
      );
      if (res.code === 0) return true;
      if (/not found/i.test(res.stderr)) return false;
      throw new HelmError(
        `helm uninstall ${req.release} in ${req.namespace} failed: ${summarize(res.stderr)}`,
        isRetryableHelmFailure(res.stderr),
        res.stderr,
      );
    },

    async status(release, namespace) {
      const res = await run(['status', release, '--namespace', namespace, '--output', 'json'], 60_000);
      if (res.code === 0) return parseRelease(res.stdout);
      if (/not found/i.test(res.stderr)) return undefined;
      throw new HelmError(`helm status ${release} in ${namespace} failed: ${summarize(res.stderr)}`, isRetryableHelmFailure(res.stderr), res.stderr);
    },
  };
}
