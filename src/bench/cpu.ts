/**
 * CPU time spent during a benchmark phase, by process, from /proc/<pid>/stat: where a burst's
 * two cores went (the worker, Temporal, PostgreSQL, the API server, etcd, helm, …). A process's own
 * time is utime + stime; the time of its children that exited and were waited for (helm runs,
 * PostgreSQL backends) is in its cutime + cstime, counted here under the children's class.
 */
import { readFile, readdir } from 'node:fs/promises';

export interface ProcCpu {
  pid: number;
  comm: string;
  /** utime + stime, in clock ticks. */
  self: number;
  /** cutime + cstime: children that exited and were waited for, in clock ticks. */
  children: number;
}

/** Parses one /proc/<pid>/stat line; undefined when it is not one. */
export function parseStat(line: string): ProcCpu | undefined {
  const open = line.indexOf('(');
  const close = line.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(line.slice(0, open).trim());
  // After the command: state, ppid, pgrp, session, tty, tpgid, flags, minflt, cminflt, majflt,
  // cmajflt, utime, stime, cutime, cstime, …
  const f = line.slice(close + 2).split(' ');
  const n = (i: number) => Number(f[i]);
  if (!Number.isInteger(pid) || f.length < 15 || [11, 12, 13, 14].some((i) => !Number.isFinite(n(i)))) return undefined;
  return { pid, comm: line.slice(open + 1, close), self: n(11) + n(12), children: n(13) + n(14) };
}

/** Every process's CPU times now. */
export async function sampleCpu(): Promise<Map<number, ProcCpu>> {
  const out = new Map<number, ProcCpu>();
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((d) => /^\d+$/.test(d));
  await Promise.all(
    pids.map(async (pid) => {
      const line = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
      const p = line ? parseStat(line) : undefined;
      if (p) out.set(p.pid, p);
    }),
  );
  return out;
}

/** Names a process's own time and its waited-for children's time; undefined leaves it out. */
export type Classify = (p: ProcCpu) => { self: string; children: string } | undefined;

/**
 * CPU seconds by class between two samples. A process that started in between counts whole; one
 * that ended in between is lost, except through its parent's children time when it was waited for.
 */
export function cpuDelta(before: Map<number, ProcCpu>, after: Map<number, ProcCpu>, classify: Classify, ticksPerSecond = 100): Map<string, number> {
  const out = new Map<string, number>();
  const add = (k: string, ticks: number) => {
    if (ticks > 0) out.set(k, (out.get(k) ?? 0) + ticks / ticksPerSecond);
  };
  for (const [pid, a] of after) {
    const classes = classify(a);
    if (!classes) continue;
    // A reused pid (another command) counts whole.
    const b = before.get(pid);
    const was = b && b.comm === a.comm ? b : undefined;
    add(classes.self, a.self - (was?.self ?? 0));
    add(classes.children, a.children - (was?.children ?? 0));
  }
  return out;
}

/** The processes of the local stack and of this benchmark, by what they are. */
export function stackClassifier(roles: { bench: number; workers: readonly number[] }): Classify {
  const workers = new Set(roles.workers);
  return (p) => {
    if (p.pid === roles.bench) return { self: roles.workers.length > 0 ? 'bench process (client, direct path)' : 'bench process (worker, client, direct path)', children: 'helm' };
    if (workers.has(p.pid)) return { self: 'worker processes', children: 'helm' };
    const c = p.comm;
    if (c === 'helm') return { self: 'helm', children: 'helm' };
    if (c.startsWith('postgres')) return { self: 'PostgreSQL', children: 'PostgreSQL' };
    if (c.startsWith('temporal')) return { self: 'Temporal server', children: 'Temporal server' };
    if (c === 'kube-apiserver') return { self: 'kube-apiserver', children: 'kube-apiserver' };
    if (c === 'etcd') return { self: 'etcd', children: 'etcd' };
    if (c.startsWith('kube-') || c.startsWith('kwok')) return { self: 'controllers, scheduler, kwok', children: 'controllers, scheduler, kwok' };
    return undefined;
  };
}

/**
 * `worker processes 80.1 s (0.16/tenant), …, sum 250.0 s (0.50/tenant) of 300.0 s on 2 cores`:
 * largest first, then the sum against what the cores could give over the phase.
 */
export function formatCpu(byClass: Map<string, number>, tenants: number, wallMs: number, cores: number): string {
  const rows = [...byClass].sort(([, a], [, b]) => b - a);
  const total = rows.reduce((s, [, v]) => s + v, 0);
  const part = (name: string, s: number) => `${name} ${s.toFixed(1)} s (${(s / tenants).toFixed(2)}/tenant)`;
  return [...rows.map(([k, v]) => part(k, v)), `${part('sum', total)} of ${((wallMs / 1000) * cores).toFixed(1)} s on ${cores} cores`].join(', ');
}
