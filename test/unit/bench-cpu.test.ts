/**
 * The benchmark's CPU accounting: /proc/<pid>/stat lines as the kernel writes them, and the
 * delta between two samples by class of process.
 */
import { cpuDelta, formatCpu, parseStat, sampleCpu, stackClassifier, type ProcCpu } from '../../src/bench/cpu';

// Fields 14–17 (utime stime cutime cstime) are 120 30 400 50.
const stat = (pid: number, comm: string, [u, s, cu, cs]: number[]) =>
  `${pid} (${comm}) S 1 ${pid} ${pid} 0 -1 4194560 5000 0 0 0 ${u} ${s} ${cu} ${cs} 20 0 12 0 2185 1303171072 30000 18446744073709551615 1 1 0 0 0 0 0 4096 1260 0 0 0 17 1 0 0 0 0 0`;

const sample = (...procs: ProcCpu[]) => new Map(procs.map((p) => [p.pid, p]));

describe('parseStat', () => {
  it('reads own and waited-for children time in ticks', () => {
    expect(parseStat(stat(42, 'node', [120, 30, 400, 50]))).toEqual({ pid: 42, comm: 'node', self: 150, children: 450 });
  });

  it('keeps a command with spaces and parentheses whole', () => {
    expect(parseStat(stat(7, 'tokio (worker) 1', [1, 2, 3, 4]))).toEqual({ pid: 7, comm: 'tokio (worker) 1', self: 3, children: 7 });
  });

  it('refuses what is not a stat line', () => {
    expect(parseStat('')).toBeUndefined();
    expect(parseStat('12 (short) S 1 2')).toBeUndefined();
  });

  it('reads this process from the real /proc', async () => {
    const all = await sampleCpu();
    expect(all.get(process.pid)?.comm).toBeTruthy();
    expect(all.get(process.pid)!.self).toBeGreaterThanOrEqual(0);
  });
});

describe('cpuDelta', () => {
  const classify = stackClassifier({ bench: 10, workers: [20, 21] });

  it('sums each class between two samples, children under their own class', () => {
    const before = sample(
      { pid: 10, comm: 'node', self: 100, children: 0 },
      { pid: 20, comm: 'node', self: 1000, children: 200 },
      { pid: 30, comm: 'temporal', self: 500, children: 0 },
      { pid: 40, comm: 'postgres', self: 50, children: 10 },
    );
    const after = sample(
      { pid: 10, comm: 'node', self: 150, children: 300 },
      { pid: 20, comm: 'node', self: 1800, children: 900 },
      { pid: 21, comm: 'node', self: 400, children: 0 }, // started in between: whole
      { pid: 30, comm: 'temporal', self: 1100, children: 0 },
      { pid: 40, comm: 'postgres', self: 60, children: 210 },
      { pid: 50, comm: 'helm', self: 30, children: 0 }, // still running at the end
      { pid: 60, comm: 'bash', self: 999, children: 0 }, // not the stack's: left out
    );
    const d = cpuDelta(before, after, classify);
    expect(Object.fromEntries(d)).toEqual({
      'bench process (client, direct path)': 0.5,
      helm: 3 + 7 + 0.3,
      'worker processes': 8 + 4,
      'Temporal server': 6,
      PostgreSQL: 0.1 + 2,
    });
  });

  it('counts a reused pid whole', () => {
    const d = cpuDelta(sample({ pid: 50, comm: 'helm', self: 900, children: 0 }), sample({ pid: 50, comm: 'etcd', self: 20, children: 0 }), classify);
    expect(Object.fromEntries(d)).toEqual({ etcd: 0.2 });
  });

  it('names the in-process worker with the bench when no worker process runs', () => {
    const d = cpuDelta(new Map(), sample({ pid: 10, comm: 'node', self: 100, children: 0 }), stackClassifier({ bench: 10, workers: [] }));
    expect([...d.keys()]).toEqual(['bench process (worker, client, direct path)']);
  });
});

describe('formatCpu', () => {
  it('lists classes largest first, per tenant, and the sum against the cores over the phase', () => {
    const text = formatCpu(new Map([['etcd', 5], ['worker processes', 20]]), 10, 30_000, 2);
    expect(text).toBe('worker processes 20.0 s (2.00/tenant), etcd 5.0 s (0.50/tenant), sum 25.0 s (2.50/tenant) of 60.0 s on 2 cores');
  });
});
