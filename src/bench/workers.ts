/**
 * Worker processes for the provisioning benchmark: `node dist/worker.js` as the image runs it,
 * several polling one task queue, each with its resident memory sampled from /proc and its V8
 * heap from its own metrics port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export interface WorkerProcess {
  pid: number;
  /** Highest VmRSS seen by the sampler, and the kernel's own high-water mark (VmHWM) at the last sample, in bytes. */
  peakRss(): number;
  /** The anonymous (heaps, malloc) and file-backed (code of Node.js and the native modules) parts of the highest VmRSS the sampler saw, in bytes. */
  peakRssParts(): { anon: number; file: number };
  /** Highest V8 heap in use and allocated, from the worker's metrics port, in bytes (0 when never read). */
  peakHeap(): { used: number; total: number };
  /** SIGTERM, then waits for the exit (in-flight tasks finish first); the exit code. */
  stop(): Promise<number | null>;
  /** The last lines the process wrote, for a failure message. */
  tail(): string;
}

/** VmRSS, VmHWM, RssAnon and RssFile of a process from /proc/<pid>/status, in bytes; undefined once it is gone. */
export async function procMemory(pid: number): Promise<{ rss: number; hwm: number; anon: number; file: number } | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  if (!status) return undefined;
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') };
}

/** V8 heap in use and allocated, from a worker's `/metrics` (prom-client's default Node.js gauges). */
async function scrapeHeap(port: number): Promise<{ used: number; total: number } | undefined> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) })
    .then((r) => r.text())
    .catch(() => undefined);
  if (!text) return undefined;
  const gauge = (name: string) => Number(new RegExp(`^\\w*${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { used: gauge('nodejs_heap_size_used_bytes'), total: gauge('nodejs_heap_size_total_bytes') };
}

/**
 * Starts `count` workers on `taskQueue` and resolves once every one of them polls. They inherit
 * this process's environment (K8S_QPS, K8S_BURST, HELM_TIMEOUT_SECONDS, … apply to them as to a
 * real worker), each with its health port on a free local port and no SDK metrics port, so several
 * can run side by side. `heapMb` caps each one's V8 old space (`--max-old-space-size`) and
 * `semiSpaceMb` its young generation (`--max-semi-space-size`), as the chart's NODE_OPTIONS does.
 */
export async function startWorkerProcesses(opts: {
  count: number;
  taskQueue: string;
  maxActivities: number;
  workflowBundle: string;
  heapMb?: number;
  semiSpaceMb?: number;
  /** Writes a V8 CPU profile of each worker, every thread, into this directory when it exits. */
  cpuProfileDir?: string;
  readyTimeoutMs?: number;
}): Promise<WorkerProcess[]> {
  const dist = path.resolve(__dirname, '..');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TASK_QUEUE: opts.taskQueue,
    WORKER_MAX_ACTIVITIES: String(opts.maxActivities),
    WORKER_MAX_HELM_ACTIVITIES: String(opts.maxActivities),
    WORKFLOW_BUNDLE: opts.workflowBundle,
    LOG_LEVEL: 'info',
    WORKER_HEALTH_BIND: '127.0.0.1:0',
    // As the image sets it (see the Dockerfile).
    MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
  };
  delete env.WORKER_METRICS_BIND;
  const v8 = [
    ...(opts.heapMb ? [`--max-old-space-size=${opts.heapMb}`] : []),
    ...(opts.semiSpaceMb ? [`--max-semi-space-size=${opts.semiSpaceMb}`] : []),
    ...(opts.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfileDir}`] : []),
  ];
  const args = [...v8, path.join(dist, 'worker.js')];
  const procs = Array.from({ length: opts.count }, () => spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const workers = procs.map((child) => watch(child));
  try {
    await Promise.all(workers.map((w) => w.ready(opts.readyTimeoutMs ?? 120_000)));
  } catch (err) {
    await Promise.all(workers.map((w) => w.handle.stop()));
    throw err;
  }
  return workers.map((w) => w.handle);
}

function watch(child: ChildProcess): { handle: WorkerProcess; ready(timeoutMs: number): Promise<void> } {
  const lines: string[] = [];
  let polling = false;
  let healthPort: number | undefined;
  let onPolling: (() => void) | undefined;
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      if (!polling && line.includes('"worker polling"')) {
        polling = true;
        healthPort = Number(/"healthPort":(\d+)/.exec(line)?.[1]) || undefined;
        onPolling?.();
      }
      lines.push(line);
      if (lines.length > 20) lines.shift();
    }
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let peak = 0;
  let sampled = { rss: 0, anon: 0, file: 0 };
  const heap = { used: 0, total: 0 };
  const sample = async () => {
    const [m, h] = await Promise.all([procMemory(child.pid!), healthPort ? scrapeHeap(healthPort) : undefined]);
    if (m) peak = Math.max(peak, m.rss, m.hwm);
    if (m && m.rss > sampled.rss) sampled = m;
    if (h) {
      heap.used = Math.max(heap.used, h.used);
      heap.total = Math.max(heap.total, h.total);
    }
  };
  const sampler = setInterval(() => void sample(), 500);
  sampler.unref();
  const handle: WorkerProcess = {
    pid: child.pid!,
    peakRss: () => peak,
    peakRssParts: () => ({ anon: sampled.anon, file: sampled.file }),
    peakHeap: () => ({ ...heap }),
    tail: () => lines.join('\n'),
    async stop() {
      await sample();
      clearInterval(sampler);
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return exited;
    },
  };
  return {
    handle,
    ready: (timeoutMs) =>
      new Promise<void>((resolve, reject) => {
        if (polling) return resolve();
        const timer = setTimeout(() => reject(new Error(`worker ${child.pid} did not poll within ${timeoutMs / 1000} s:\n${handle.tail()}`)), timeoutMs);
        onPolling = () => {
          clearTimeout(timer);
          resolve();
        };
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`worker ${child.pid} exited with ${code} before polling:\n${handle.tail()}`));
        });
      }),
  };
}
