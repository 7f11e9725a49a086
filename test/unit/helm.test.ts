/**
 * createHelm against a fake `helm`: a shell script that records its argv (and a copy of the values
 * file while it exists) and answers with canned stdout, stderr and exit code, or hangs.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { HelmError, createHelm, isRetryableHelmFailure, type Helm, type HelmOptions } from '../../src/helm/helm';
import { NotReadyError, type ReadinessRequest, type ReadinessWaiter } from '../../src/helm/readiness';

const SCRIPT = `#!/bin/sh
dir="$(dirname "$0")"
if [ ! -f "$dir/argv" ]; then for a in "$@"; do printf '%s\\n' "$a" >> "$dir/argv"; done; fi
echo "$*" >> "$dir/calls"
if [ "$1" = "--kubeconfig" ]; then sub="$3"; else sub="$1"; fi
prev=""
for a in "$@"; do
  if [ "$prev" = "--values" ]; then cp "$a" "$dir/values.seen"; fi
  prev="$a"
done
echo $$ > "$dir/pid"
if [ -f "$dir/hang" ]; then exec sleep 30; fi
if [ -f "$dir/stdout.$sub" ]; then cat "$dir/stdout.$sub"; elif [ -f "$dir/stdout" ]; then cat "$dir/stdout"; fi
if [ -f "$dir/stderr.$sub" ]; then cat "$dir/stderr.$sub" >&2; elif [ -f "$dir/stderr" ]; then cat "$dir/stderr" >&2; fi
if [ -f "$dir/exit.$sub" ]; then exit "$(cat "$dir/exit.$sub")"; fi
exit "$(cat "$dir/exit" 2>/dev/null || echo 0)"
`;

interface Answer {
  stdout?: string;
  stderr?: string;
  exit?: number;
}

interface Behaviour extends Answer {
  hang?: boolean;
  /** Answers of one subcommand (`history`, `rollback`, …), instead of the common one. */
  per?: Record<string, Answer>;
}

interface Fake {
  dir: string;
  binary: string;
  /** The first call's arguments. */
  argv(): Promise<string[]>;
  /** Every call, one line of space-separated arguments each. */
  calls(): Promise<string[]>;
  pid(): Promise<number>;
}

const dirs: string[] = [];

async function fakeHelm(b: Behaviour): Promise<Fake> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fake-helm-'));
  dirs.push(dir);
  const binary = path.join(dir, 'helm');
  await writeFile(binary, SCRIPT);
  await chmod(binary, 0o755);
  if (b.stdout !== undefined) await writeFile(path.join(dir, 'stdout'), b.stdout);
  if (b.stderr !== undefined) await writeFile(path.join(dir, 'stderr'), b.stderr);
  if (b.exit !== undefined) await writeFile(path.join(dir, 'exit'), String(b.exit));
  if (b.hang) await writeFile(path.join(dir, 'hang'), '');
  for (const [sub, a] of Object.entries(b.per ?? {})) {
    if (a.stdout !== undefined) await writeFile(path.join(dir, `stdout.${sub}`), a.stdout);
    if (a.stderr !== undefined) await writeFile(path.join(dir, `stderr.${sub}`), a.stderr);
    if (a.exit !== undefined) await writeFile(path.join(dir, `exit.${sub}`), String(a.exit));
  }
  return {
    dir,
    binary,
    argv: async () => (await readFile(path.join(dir, 'argv'), 'utf8')).split('\n').slice(0, -1),
    calls: async () => (existsSync(path.join(dir, 'calls')) ? (await readFile(path.join(dir, 'calls'), 'utf8')).split('\n').slice(0, -1) : []),
    pid: async () => Number((await readFile(path.join(dir, 'pid'), 'utf8')).trim()),
  };
}

/** A readiness wait that answers at once (ready), or as told; it records what it was asked. */
function fakeReadiness(answer: (req: ReadinessRequest) => Promise<void> = () => Promise.resolve()): ReadinessWaiter & { asked: ReadinessRequest[] } {
  const asked: ReadinessRequest[] = [];
  return {
    asked,
    waitReady(req) {
      asked.push(req);
      return answer(req);
    },
  };
}

function helmWith(fake: Fake, options: Omit<HelmOptions, 'binary'> = {}): Helm {
  return createHelm({ binary: fake.binary, readiness: fakeReadiness(), ...options });
}

/** Waits with real I/O (setImmediate; works under fake timers too) until `cond` holds. */
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const started = (fake: Fake) => until(() => existsSync(path.join(fake.dir, 'pid')), 'the fake helm to start');

function release(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    name: 'tenant-app',
    namespace: 'tenant-x',
    version: 3,
    info: { status: 'deployed', description: 'Upgrade complete' },
    chart: { metadata: { name: 'tenant', version: '0.1.0' } },
    ...overrides,
  });
}

const REQUEST = {
  release: 'tenant-app',
  namespace: 'tenant-x',
  chart: '/charts/tenant',
  values: { tenant: { id: 'abc', plan: 'pro' }, replicaCount: 2, resources: { limits: { cpu: '500m' } } },
  timeoutSeconds: 120,
};

const pids: number[] = [];

afterEach(() => {
  jest.useRealTimers();
});

afterAll(async () => {
  // Nothing should be left running; this only guards against a failed test leaving a sleeper.
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('upgradeInstall', () => {
  it('passes the documented arguments, writes the values to a file it deletes afterwards, and parses the release', async () => {
    const fake = await fakeHelm({ stdout: release() });
    const info = await helmWith(fake).upgradeInstall(REQUEST);

    expect(info).toStrictEqual({ name: 'tenant-app', namespace: 'tenant-x', revision: 3, status: 'deployed' });
    const argv = await fake.argv();
    const valuesFile = argv[argv.indexOf('--values') + 1]!;
    expect(argv).toEqual([
      'upgrade', 'tenant-app', '/charts/tenant',
      '--install',
      '--namespace', 'tenant-x',
      '--values', valuesFile,
      '--timeout', '120s',
      '--history-max', '5',
      '--output', 'json',
    ]);
    expect(path.isAbsolute(valuesFile)).toBe(true);
    expect(JSON.parse(await readFile(path.join(fake.dir, 'values.seen'), 'utf8'))).toStrictEqual(REQUEST.values);
    expect(existsSync(valuesFile)).toBe(false);
    expect(existsSync(path.dirname(valuesFile))).toBe(false);
  });

  it('puts --kubeconfig first when configured', async () => {
    const fake = await fakeHelm({ stdout: release() });
    await helmWith(fake, { kubeconfig: '/etc/kube/config' }).upgradeInstall({ ...REQUEST, timeoutSeconds: 45 });
    const argv = await fake.argv();
    expect(argv.slice(0, 5)).toEqual(['--kubeconfig', '/etc/kube/config', 'upgrade', 'tenant-app', '/charts/tenant']);
    expect(argv[argv.indexOf('--timeout') + 1]).toBe('45s');
  });

  it("reports status 'unknown' when helm's JSON has no info.status", async () => {
    const fake = await fakeHelm({ stdout: release({ info: undefined, version: 1 }) });
    await expect(helmWith(fake).upgradeInstall(REQUEST)).resolves.toStrictEqual({
      name: 'tenant-app',
      namespace: 'tenant-x',
      revision: 1,
      status: 'unknown',
    });
  });

  it('a schema violation is a final HelmError, and the values file is still deleted', async () => {
    const stderr =
      "Error: INSTALLATION FAILED: values don't meet the specifications of the schema(s) in the following chart(s):\ntenant:\n- replicaCount: Invalid type. Expected: integer, given: string\n";
    const fake = await fakeHelm({ stderr, exit: 1 });
    const err = await helmWith(fake)
      .upgradeInstall(REQUEST)
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(HelmError);
    const helmErr = err as HelmError;
    expect(helmErr.retryable).toBe(false);
    expect(helmErr.stderr).toBe(stderr);
    expect(helmErr.message).toContain('helm upgrade --install tenant-app in tenant-x failed');
    expect(helmErr.message).toContain('replicaCount: Invalid type');
    const argv = await fake.argv();
    expect(existsSync(argv[argv.indexOf('--values') + 1]!)).toBe(false);
  });

  it('a readiness timeout is a retryable HelmError', async () => {
    const fake = await fakeHelm({
      stderr: 'Error: UPGRADE FAILED: release tenant-app failed, and has been rolled back due to atomic being set: timed out waiting for the condition\n',
      exit: 1,
    });
    const err = await helmWith(fake)
      .upgradeInstall(REQUEST)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelmError);
    expect((err as HelmError).retryable).toBe(true);
    expect((err as HelmError).message).toContain('timed out waiting for the condition');
  });

  it('a binary that does not exist is a final HelmError that mentions HELM_BIN', async () => {
    const missing = path.join(os.tmpdir(), `no-such-helm-${process.pid}`, 'helm');
    const err = await createHelm({ binary: missing })
      .upgradeInstall(REQUEST)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelmError);
    expect((err as HelmError).retryable).toBe(false);
    expect((err as HelmError).message).toContain('HELM_BIN');
    expect((err as HelmError).message).toContain(missing);
  });

  it('an abort mid-run kills helm and rejects with "cancelled"', async () => {
    const fake = await fakeHelm({ hang: true });
    const controller = new AbortController();
    const running = helmWith(fake)
      .upgradeInstall({ ...REQUEST, signal: controller.signal })
      .catch((e: unknown) => e);
    await started(fake);
    const pid = await fake.pid();
    pids.push(pid);
    expect(alive(pid)).toBe(true);

    controller.abort();
    const err = await running;
    expect(err).toBeInstanceOf(HelmError);
    expect((err as HelmError).message).toMatch(/helm upgrade was cancelled/);
    expect((err as HelmError).retryable).toBe(true);
    await until(() => !alive(pid), 'the fake helm to die');
    const argv = await fake.argv();
    expect(existsSync(argv[argv.indexOf('--values') + 1]!)).toBe(false);
  });

  it('an already aborted signal rejects with "cancelled" at once', async () => {
    const fake = await fakeHelm({ hang: true });
    const err = await helmWith(fake)
      .upgradeInstall({ ...REQUEST, signal: AbortSignal.abort() })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelmError);
    expect((err as HelmError).message).toContain('cancelled');
  });

  it('kills a hung helm once the timeout it shares with the readiness wait is spent, reporting progress meanwhile', async () => {
    // Fake clock for the hard timeout and the progress ticker; the child process itself is real.
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'queueMicrotask', 'performance', 'hrtime'] });
    const fake = await fakeHelm({ hang: true, per: { history: { stderr: 'Error: release: not found', exit: 1 } } });
    const progress: number[] = [];
    let settled = false;
    const running = helmWith(fake)
      .upgradeInstall({ ...REQUEST, timeoutSeconds: 20, onProgress: (ms) => progress.push(ms) })
      .catch((e: unknown) => e)
      .finally(() => (settled = true));
    await started(fake);
    const pid = await fake.pid();
    pids.push(pid);

    await jest.advanceTimersByTimeAsync(19_999);
    expect(settled).toBe(false);
    expect(alive(pid)).toBe(true);
    expect(progress).toEqual([5_000, 10_000, 15_000]);

    await jest.advanceTimersByTimeAsync(1);
    await until(() => !alive(pid), 'the fake helm to be killed');
    jest.useRealTimers();
    const err = await running;
    expect(err).toBeInstanceOf(HelmError);
    expect((err as HelmError).message).toBe('helm upgrade did not finish within 20 s');
    expect((err as HelmError).retryable).toBe(true);
  });
});

describe('upgradeInstall: readiness and rollback (what --atomic did)', () => {
  const manifest = [
    'apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: tenant-app',
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tenant-app-config',
    'apiVersion: v1\nkind: Service\nmetadata:\n  name: tenant-app',
    'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: tenant-app',
  ].join('\n---\n');
  const revisions = (...entries: Array<[number, string]>) =>
    JSON.stringify(entries.map(([revision, status]) => ({ revision, status, updated: new Date().toISOString() })));
  const never = (req: ReadinessRequest) => Promise.reject(new NotReadyError('timeout', [`Deployment/tenant-app: 0 of 1 expected pods are ready (${req.namespace})`]));

  it("waits for the rendered Deployment and Service in the release's namespace, within the same timeout", async () => {
    const fake = await fakeHelm({ stdout: release({ manifest }) });
    const readiness = fakeReadiness();
    await expect(helmWith(fake, { readiness }).upgradeInstall(REQUEST)).resolves.toMatchObject({ revision: 3, status: 'deployed' });
    expect(readiness.asked).toHaveLength(1);
    const asked = readiness.asked[0]!;
    expect(asked.namespace).toBe('tenant-x');
    expect(asked.objects).toEqual([
      { kind: 'Service', name: 'tenant-app' },
      { kind: 'Deployment', name: 'tenant-app' },
    ]);
    expect(asked.timeoutMs).toBeGreaterThan(100_000);
    expect(asked.timeoutMs).toBeLessThanOrEqual(120_000);
    expect(await fake.calls()).toHaveLength(1);
  });

  it('an upgrade that never becomes ready is rolled back to the revision before it, with a retryable error', async () => {
    const fake = await fakeHelm({ stdout: release({ manifest, version: 3 }), per: { history: { stdout: revisions([1, 'superseded'], [2, 'superseded'], [3, 'deployed']) } } });
    const err = await helmWith(fake, { readiness: fakeReadiness(never) })
      .upgradeInstall(REQUEST)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelmError);
    expect((err as HelmError).retryable).toBe(true);
    expect((err as HelmError).message).toContain('release tenant-app in tenant-x did not become ready within 120 s');
    expect((err as HelmError).message).toContain('0 of 1 expected pods are ready');
    expect((err as HelmError).message).toContain('rolled back to revision 2');
    const calls = await fake.calls();
    expect(calls.map((c) => c.split(' ')[0])).toEqual(['upgrade', 'history', 'rollback']);
    expect(calls[2]).toBe('rollback tenant-app 2 --namespace tenant-x --wait --timeout 120s --history-max 5');
  });

  it('a first install that never becomes ready is uninstalled', async () => {
    const fake = await fakeHelm({ stdout: release({ manifest, version: 1 }), per: { history: { stdout: revisions([1, 'deployed']) } } });
    const err = await helmWith(fake, { readiness: fakeReadiness(never) })
      .upgradeInstall(REQUEST)
      .catch((e: unknown) => e);
    expect((err as HelmError).retryable).toBe(true);
    expect((err as HelmError).message).toContain('the failed first install was uninstalled');
    expect((await fake.calls())[2]).toBe('uninstall tenant-app --namespace tenant-x --wait --timeout 120s');
  });

  it('a cancelled wait still rolls back (the rollback is not cut short by the same signal)', async () => {
    const fake = await fakeHelm({ stdout: release({ manifest, version: 2 }), per: { history: { stdout: revisions([1, 'superseded'], [2, 'deployed']) } } });
    const controller = new AbortController();
    const readiness = fakeReadiness(
      (req) =>
        new Promise((_, reject) => {
          req.signal?.addEventListener('abort', () => reject(new NotReadyError('cancelled', ['Deployment/tenant-app: not seen yet'])));
          controller.abort();
        }),
    );
    const err = await helmWith(fake, { readiness })
      .upgradeInstall({ ...REQUEST, signal: controller.signal })
      .catch((e: unknown) => e);
    expect((err as HelmError).retryable).toBe(true);
    expect((err as HelmError).message).toContain('cancelled while waiting for Deployment/tenant-app');
    expect((await fake.calls())[2]).toMatch(/^rollback tenant-app 1 /);
  });

  it('a revision helm itself left failed is rolled back; a failure before any release exists touches nothing', async () => {
    const failed = await fakeHelm({
      stderr: 'Error: UPGRADE FAILED: etcdserver: request timed out\n',
      exit: 1,
      per: { history: { stdout: revisions([1, 'superseded'], [2, 'deployed'], [3, 'failed']), exit: 0 }, rollback: { exit: 0 } },
    });
    const err = await helmWith(failed).upgradeInstall(REQUEST).catch((e: unknown) => e);
    expect((err as HelmError).retryable).toBe(true);
    expect((err as HelmError).message).toContain('rolled back to revision 2');

    const schema = await fakeHelm({ stderr: "Error: INSTALLATION FAILED: values don't meet the specifications of the schema(s)\n", exit: 1, per: { history: { stderr: 'Error: release: not found' } } });
    const err2 = await helmWith(schema).upgradeInstall(REQUEST).catch((e: unknown) => e);
    expect((err2 as HelmError).retryable).toBe(false);
    expect((await schema.calls()).map((c) => c.split(' ')[0])).toEqual(['upgrade', 'history']);
  });

  it('a chart that renders a kind the wait cannot judge is undone with a final error', async () => {
    const sts = `${manifest}\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db`;
    const fake = await fakeHelm({ stdout: release({ manifest: sts, version: 1 }), per: { history: { stdout: revisions([1, 'deployed']) } } });
    const readiness = fakeReadiness();
    const err = await helmWith(fake, { readiness }).upgradeInstall(REQUEST).catch((e: unknown) => e);
    expect((err as HelmError).retryable).toBe(false);
    expect((err as HelmError).message).toContain('cannot judge StatefulSet db');
    expect(readiness.asked).toHaveLength(0);
    expect((await fake.calls())[2]).toMatch(/^uninstall tenant-app /);
  });
});

describe('uninstall', () => {
  const req = { release: 'tenant-app', namespace: 'tenant-x', timeoutSeconds: 30 };

  it('runs helm uninstall --wait and returns true', async () => {
    const fake = await fakeHelm({ stdout: 'release "tenant-app" uninstalled\n' });
    await expect(helmWith(fake).uninstall(req)).resolves.toBe(true);
    expect(await fake.argv()).toEqual(['uninstall', 'tenant-app', '--namespace', 'tenant-x', '--wait', '--timeout', '30s']);
  });

  it('returns false when the release does not exist', async () => {
    const fake = await fakeHelm({ stderr: 'Error: uninstall: Release not loaded: tenant-app: release: not found\n', exit: 1 });
    await expect(helmWith(fake).uninstall(req)).resolves.toBe(false);
  });

  it('throws a HelmError for other failures', async () => {
    const fake = await fakeHelm({ stderr: 'Error: uninstallation completed with 1 error(s): context deadline exceeded\n', exit: 1 });
    const err = await helmWith(fake)
      .uninstall(req)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelmError);
    expect((err as HelmError).retryable).toBe(true);
    expect((err as HelmError).message).toContain('helm uninstall tenant-app in tenant-x failed');
  });
});

describe('status', () => {
  it('parses the release', async () => {
    const fake = await fakeHelm({ stdout: release({ version: 7, info: { status: 'failed' } }) });
    await expect(helmWith(fake).status('tenant-app', 'tenant-x')).resolves.toStrictEqual({
      name: 'tenant-app',
      namespace: 'tenant-x',
      revision: 7,
      status: 'failed',
    });
    expect(await fake.argv()).toEqual(['status', 'tenant-app', '--namespace', 'tenant-x', '--output', 'json']);
  });

  it('returns undefined when the release does not exist', async () => {
    const fake = await fakeHelm({ stderr: 'Error: release: not found\n', exit: 1 });
    await expect(helmWith(fake).status('tenant-app', 'tenant-x')).resolves.toBeUndefined();
  });

  it('kills a hung helm status after 60 s', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'queueMicrotask', 'performance', 'hrtime'] });
    const fake = await fakeHelm({ hang: true });
    const running = helmWith(fake)
      .status('tenant-app', 'tenant-x')
      .catch((e: unknown) => e);
    await started(fake);
    const pid = await fake.pid();
    pids.push(pid);
    await jest.advanceTimersByTimeAsync(60_000);
    const err = await running;
    expect(err).toBeInstanceOf(HelmError);
    expect((err as HelmError).message).toBe('helm status did not finish within 60 s');
    await until(() => !alive(pid), 'the fake helm to be killed');
  });
});

describe('recoverPending', () => {
  const req = { release: 'tenant-app', namespace: 'tenant-x', timeoutSeconds: 30, staleAfterSeconds: 60 };
  const history = (...entries: Array<[number, string, number]>) =>
    JSON.stringify(entries.map(([revision, status, agoSeconds]) => ({ revision, status, updated: new Date(Date.now() - agoSeconds * 1000).toISOString() })));

  it('rolls a stale pending-upgrade back to the last good revision', async () => {
    const fake = await fakeHelm({ stdout: history([1, 'superseded', 900], [2, 'deployed', 600], [3, 'pending-upgrade', 120]) });
    expect(await helmWith(fake).recoverPending(req)).toEqual({ action: 'rolled-back', from: 'pending-upgrade', toRevision: 2 });
    expect((await fake.calls())[1]).toMatch(/^rollback tenant-app 2 /);
  });

  it('uninstalls a stale pending-install that never became ready', async () => {
    const fake = await fakeHelm({ stdout: history([1, 'pending-install', 120]) });
    expect(await helmWith(fake).recoverPending(req)).toEqual({ action: 'uninstalled', from: 'pending-install' });
    expect((await fake.calls())[1]).toMatch(/^uninstall tenant-app /);
  });

  it('leaves a fresh lock alone: another helm may still hold it', async () => {
    const fake = await fakeHelm({ stdout: history([1, 'deployed', 600], [2, 'pending-rollback', 5]) });
    expect(await helmWith(fake).recoverPending(req)).toMatchObject({ action: 'wait', status: 'pending-rollback' });
    expect((await fake.argv())[0]).toBe('history');
  });

  it('does nothing to a deployed release, or when there is none', async () => {
    expect(await helmWith(await fakeHelm({ stdout: history([1, 'deployed', 5]) })).recoverPending(req)).toEqual({ action: 'none' });
    expect(await helmWith(await fakeHelm({ stderr: 'Error: release: not found', exit: 1 })).recoverPending(req)).toEqual({ action: 'none' });
  });
});

describe('isRetryableHelmFailure', () => {
  it.each<[string, boolean]>([
    ["Error: INSTALLATION FAILED: values don't meet the specifications of the schema(s) in the following chart(s)", false],
    ['Error: YAML parse error on tenant/templates/deployment.yaml: error converting YAML to JSON: yaml: line 4: mapping values are not allowed', false],
    ['Error: parse error at (tenant/templates/_helpers.tpl:3): unexpected "}" in operand', false],
    ['Error: template: tenant/templates/deployment.yaml:12:20: executing "x" at <.Values.nope.x>: nil pointer', false],
    ['Error: UPGRADE FAILED: deployments.apps "app" is forbidden: User "system:serviceaccount:x:y" cannot patch resource', false],
    ['Error: INSTALLATION FAILED: create: failed to create: secrets is forbidden: exceeded quota: tenant-quota', false],
    ['Error: INSTALLATION FAILED: Chart.yaml file is missing', false],
    ['Error: path "/charts/nope" not found', false],
    ['Error: open /charts/tenant/values.yaml: no such file or directory', false],
    ['Error: UPGRADE FAILED: Deployment.apps "app" is invalid: spec.template.spec.containers[0].image: Required value', false],
    ['Error: UPGRADE FAILED: timed out waiting for the condition', true],
    ['Error: INSTALLATION FAILED: context deadline exceeded', true],
    ['Error: Kubernetes cluster unreachable: Get "https://10.0.0.1:443/version": dial tcp 10.0.0.1:443: connect: connection refused', true],
    ['Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress', true],
    ['Error: etcdserver: request timed out', true],
    ['', true],
  ])('%j → %s', (stderr, expected) => {
    expect(isRetryableHelmFailure(stderr)).toBe(expected);
  });
});
