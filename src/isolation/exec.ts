/**
 * A command run inside a pod's container through the API server (`pods/exec`), the way
 * `kubectl exec` does it, with a deadline: a hung exec never holds up the caller.
 */
import { Writable } from 'node:stream';
import { Exec, type KubeConfig, type V1Status } from '@kubernetes/client-node';

export interface ExecResult {
  /** The command's exit code; undefined when it never reported one (the exec itself failed). */
  exitCode?: number;
  stdout: string;
  stderr: string;
  /** Why the exec failed (the API refused it, the deadline passed), when it did. */
  error?: string;
}

export interface PodRef {
  namespace: string;
  pod: string;
  container: string;
}

export type PodExec = (where: PodRef, command: string[], timeoutMs: number) => Promise<ExecResult>;

function collector(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      // A probe prints one line; anything past 64 KiB is noise.
      if (chunks.reduce((n, c) => n + c.length, 0) < 65_536) chunks.push(Buffer.from(chunk));
      done();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/** The exit code in an exec's final status: 0 on Success, the ExitCode cause on NonZeroExitCode. */
export function exitCodeOf(status: V1Status): number | undefined {
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  const code = Number(cause?.message);
  return Number.isInteger(code) ? code : undefined;
}

export function createPodExec(kc: KubeConfig): PodExec {
  const exec = new Exec(kc);
  return async (where, command, timeoutMs) => {
    const out = collector();
    const err = collector();
    return new Promise<ExecResult>((resolve) => {
      let settled = false;
      let socket: { close(): void } | undefined;
      const finish = (r: Omit<ExecResult, 'stdout' | 'stderr'>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket?.close();
        resolve({ ...r, stdout: out.text(), stderr: err.text() });
      };
      const timer = setTimeout(
        () => finish({ error: `exec in ${where.namespace}/${where.pod} did not finish within ${timeoutMs} ms` }),
        timeoutMs,
      );
      exec
        .exec(where.namespace, where.pod, where.container, command, out.stream, err.stream, null, false, (status) => {
          const exitCode = exitCodeOf(status);
          finish(exitCode === undefined ? { error: `exec in ${where.namespace}/${where.pod} failed: ${status.message ?? status.reason ?? 'no exit code'}` } : { exitCode });
        })
        .then(
          (opened: unknown) => {
            // isomorphic-ws ships no types here; only close() and the close event are used.
            const ws = opened as { close(): void; on(event: 'close', listener: () => void): void };
            socket = ws;
            if (settled) ws.close();
            // A socket closed without a status (API server or kubelet gone) ends the exec too.
            ws.on('close', () => setTimeout(() => finish({ error: `exec in ${where.namespace}/${where.pod} ended without an exit status` }), 50));
          },
          (e: unknown) => finish({ error: `exec in ${where.namespace}/${where.pod} refused: ${describe(e)}` }),
        );
    });
  };
}

function describe(e: unknown): string {
  if (e && typeof e === 'object') {
    const o = e as { message?: unknown; statusCode?: unknown; body?: unknown };
    if (typeof o.message === 'string' && o.message) return o.message;
    if (typeof o.statusCode === 'number') return `HTTP ${o.statusCode}`;
  }
  return String(e);
}
