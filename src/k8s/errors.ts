/**
 * The one place that decides what a Kubernetes API error means for a provisioning step.
 *
 * 429, 5xx, timeouts and broken connections are transient: the activity throws and Temporal retries
 * it (bounded by the retry policy). 400/401/403/422 will not fix themselves: they become
 * non-retryable failures with a message an operator can act on. 404 and 409 are answers, not
 * errors, for idempotent steps; callers ask `isNotFound` / `conflictReason` before mapping.
 */
import { ApplicationFailure } from '@temporalio/common';

export type KubeErrorClass = 'retryable' | 'final' | 'not-found' | 'already-exists' | 'conflict';

interface StatusBody {
  reason?: string;
  message?: string;
}

export interface KubeErrorInfo {
  code?: number;
  reason?: string;
  message: string;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET']);

function parseBody(body: unknown): StatusBody {
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as StatusBody;
    } catch {
      return { message: body };
    }
  }
  if (body && typeof body === 'object') return body;
  return {};
}

/** Reads code, reason and message from an ApiException-like error (or anything else). */
export function kubeErrorInfo(err: unknown): KubeErrorInfo {
  // Only an HTTP status counts: a DOMException (AbortError 20, TimeoutError 23 from an aborted or
  // timed-out request) also carries a numeric `code`, and is a request that never got an answer.
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'number' && err.code >= 100 && err.code <= 599) {
    const body = parseBody('body' in err ? err.body : undefined);
    return {
      code: err.code,
      reason: body.reason,
      message: body.message ?? `HTTP ${err.code}`,
    };
  }
  return { message: err instanceof Error ? err.message : String(err) };
}

export function classifyKubeError(err: unknown): KubeErrorClass {
  const info = kubeErrorInfo(err);
  const { code } = info;
  if (code === undefined) {
    // No HTTP status: the request never got an answer (network, abort on timeout, DNS).
    return 'retryable';
  }
  if (code === 404) return 'not-found';
  if (code === 409) return info.reason === 'AlreadyExists' ? 'already-exists' : 'conflict';
  if (code === 429 || code >= 500 || code === 408) return 'retryable';
  return 'final';
}

export function isNotFound(err: unknown): boolean {
  return classifyKubeError(err) === 'not-found';
}

export function isAlreadyExists(err: unknown): boolean {
  return classifyKubeError(err) === 'already-exists';
}

export function isNetworkError(err: unknown): boolean {
  const code = (err as { code?: unknown; cause?: { code?: unknown } } | null)?.cause?.code ?? (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && NETWORK_CODES.has(code);
}

/**
 * Turns an error from a Kubernetes call into what the activity should throw: the same error to be
 * retried, or a non-retryable ApplicationFailure with a readable message. `what` names the action,
 * e.g. `apply NetworkPolicy tenant-x/default-deny-all`.
 */
export function toActivityError(err: unknown, what: string): Error {
  const info = kubeErrorInfo(err);
  const detail = `${what}: ${info.code ? `HTTP ${info.code}${info.reason ? ` ${info.reason}` : ''}: ` : ''}${info.message}`;
  switch (classifyKubeError(err)) {
    case 'final':
      if (info.code === 401 || info.code === 403) {
        return ApplicationFailure.nonRetryable(
          `${detail} (the provisioner's ServiceAccount lacks this permission: check charts/provisioner's ClusterRole)`,
          'KubernetesForbidden',
        );
      }
      return ApplicationFailure.nonRetryable(detail, 'KubernetesRejected');
    case 'conflict':
      // A field owned by another manager: retrying with the same intent would only fail again.
      return ApplicationFailure.nonRetryable(`${detail} (another field manager owns these fields)`, 'KubernetesConflict');
    default:
      return ApplicationFailure.retryable(detail, 'KubernetesUnavailable');
  }
}
