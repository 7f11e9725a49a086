import { ApiException } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import {
  classifyKubeError,
  isAlreadyExists,
  isNetworkError,
  isNotFound,
  kubeErrorInfo,
  toActivityError,
  type KubeErrorClass,
} from '../../src/k8s/errors';

/** The shape @kubernetes/client-node 1.x rejects with: an HTTP code and the raw Status body. */
function status(code: number, reason: string, message = `${reason} from the API server`, asString = true): { code: number; body: unknown } {
  const body = { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code };
  return { code, body: asString ? JSON.stringify(body) : body };
}

/** The real reason of a signal from AbortSignal.timeout, i.e. what a timed-out fetch rejects with. */
function timeoutReason(): Promise<unknown> {
  const signal = AbortSignal.timeout(1);
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(signal.reason), { once: true }));
}

function abortReason(): unknown {
  const controller = new AbortController();
  controller.abort();
  return controller.signal.reason;
}

function connRefused(): Error {
  return Object.assign(new Error('request to http://127.0.0.1:1/api/v1 failed, reason: connect ECONNREFUSED 127.0.0.1:1'), {
    type: 'system',
    errno: 'ECONNREFUSED',
    code: 'ECONNREFUSED',
  });
}

describe('classifyKubeError', () => {
  const table: Array<[string, unknown, KubeErrorClass]> = [
    ['404 NotFound (JSON string body)', status(404, 'NotFound'), 'not-found'],
    ['404 NotFound (object body)', status(404, 'NotFound', 'namespaces "x" not found', false), 'not-found'],
    ['404 without a body', { code: 404 }, 'not-found'],
    ['409 AlreadyExists (JSON string body)', status(409, 'AlreadyExists'), 'already-exists'],
    ['409 AlreadyExists (object body)', status(409, 'AlreadyExists', 'secrets "db" already exists', false), 'already-exists'],
    ['409 Conflict', status(409, 'Conflict', 'Apply failed with 1 conflict: conflict with "kubectl"'), 'conflict'],
    ['409 without a reason', { code: 409, body: '' }, 'conflict'],
    ['429 TooManyRequests', status(429, 'TooManyRequests'), 'retryable'],
    ['500 InternalError', status(500, 'InternalError'), 'retryable'],
    ['503 ServiceUnavailable', status(503, 'ServiceUnavailable'), 'retryable'],
    ['504 Timeout', status(504, 'Timeout'), 'retryable'],
    ['408 request timeout', status(408, 'Timeout'), 'retryable'],
    ['500 with a non-JSON body', { code: 500, body: '<html>bad gateway</html>' }, 'retryable'],
    ['400 BadRequest', status(400, 'BadRequest'), 'final'],
    ['401 Unauthorized', status(401, 'Unauthorized'), 'final'],
    ['403 Forbidden', status(403, 'Forbidden'), 'final'],
    ['422 Invalid', status(422, 'Invalid'), 'final'],
    ['real ApiException 409 AlreadyExists', new ApiException(409, 'Unsuccessful HTTP Request', JSON.stringify({ kind: 'Status', reason: 'AlreadyExists' }), {}), 'already-exists'],
    ['real ApiException 403', new ApiException(403, 'Unsuccessful HTTP Request', JSON.stringify({ kind: 'Status', reason: 'Forbidden' }), {}), 'final'],
    ['connect ECONNREFUSED (plain Error)', new Error('connect ECONNREFUSED 127.0.0.1:6443'), 'retryable'],
    ['ECONNREFUSED (node-fetch FetchError-like, string code)', connRefused(), 'retryable'],
    ['node-fetch AbortError (no code)', Object.assign(new Error('The user aborted a request.'), { name: 'AbortError', type: 'aborted' }), 'retryable'],
    ['AbortController abort reason (DOMException AbortError, code 20)', abortReason(), 'retryable'],
    ['a thrown string', 'socket hang up', 'retryable'],
  ];

  it.each(table)('%s → %s', (_name, err, expected) => {
    expect(classifyKubeError(err)).toBe(expected);
  });

  it('classifies the TimeoutError of AbortSignal.timeout (a DOMException with numeric code 23) as retryable', async () => {
    const reason = await timeoutReason();
    expect(reason).toMatchObject({ name: 'TimeoutError' });
    expect(classifyKubeError(reason)).toBe('retryable');
    expect(kubeErrorInfo(reason).code).toBeUndefined();
  });

  it('agrees with isNotFound / isAlreadyExists', () => {
    expect(isNotFound(status(404, 'NotFound'))).toBe(true);
    expect(isNotFound(status(409, 'AlreadyExists'))).toBe(false);
    expect(isAlreadyExists(status(409, 'AlreadyExists'))).toBe(true);
    expect(isAlreadyExists(status(409, 'Conflict'))).toBe(false);
  });
});

describe('kubeErrorInfo', () => {
  it('reads code, reason and message from a Status body, as a string or an object', () => {
    expect(kubeErrorInfo(status(422, 'Invalid', 'spec.x: Invalid value'))).toStrictEqual({ code: 422, reason: 'Invalid', message: 'spec.x: Invalid value' });
    expect(kubeErrorInfo(status(422, 'Invalid', 'spec.x: Invalid value', false))).toStrictEqual({ code: 422, reason: 'Invalid', message: 'spec.x: Invalid value' });
  });

  it('keeps a non-JSON body as the message and falls back to the HTTP code', () => {
    expect(kubeErrorInfo({ code: 502, body: 'upstream connect error' })).toStrictEqual({ code: 502, reason: undefined, message: 'upstream connect error' });
    expect(kubeErrorInfo({ code: 500 })).toStrictEqual({ code: 500, reason: undefined, message: 'HTTP 500' });
  });

  it('uses the message of errors without an HTTP code', () => {
    expect(kubeErrorInfo(new Error('connect ECONNREFUSED 127.0.0.1:6443'))).toStrictEqual({ message: 'connect ECONNREFUSED 127.0.0.1:6443' });
  });
});

describe('isNetworkError', () => {
  it.each<[string, unknown, boolean]>([
    ['code ECONNREFUSED', connRefused(), true],
    ['cause.code ECONNRESET (undici style)', Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } }), true],
    ['code EAI_AGAIN', Object.assign(new Error('getaddrinfo EAI_AGAIN'), { code: 'EAI_AGAIN' }), true],
    ['HTTP 503', status(503, 'ServiceUnavailable'), false],
    ['plain Error', new Error('boom'), false],
    ['null', null, false],
  ])('%s → %s', (_name, err, expected) => {
    expect(isNetworkError(err)).toBe(expected);
  });
});

describe('toActivityError', () => {
  const what = 'apply NetworkPolicy tenant-x/default-deny-all';

  function asFailure(err: Error): ApplicationFailure {
    expect(err).toBeInstanceOf(ApplicationFailure);
    return err as ApplicationFailure;
  }

  it('403 → non-retryable KubernetesForbidden naming the action and the ClusterRole', () => {
    const f = asFailure(toActivityError(status(403, 'Forbidden', 'networkpolicies.networking.k8s.io is forbidden: User "x" cannot patch'), what));
    expect(f.type).toBe('KubernetesForbidden');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain(what);
    expect(f.message).toContain('HTTP 403 Forbidden');
    expect(f.message).toContain('cannot patch');
    expect(f.message).toContain('ClusterRole');
  });

  it('401 → non-retryable KubernetesForbidden too', () => {
    const f = asFailure(toActivityError(status(401, 'Unauthorized'), what));
    expect(f.type).toBe('KubernetesForbidden');
    expect(f.nonRetryable).toBe(true);
  });

  it("422 → non-retryable KubernetesRejected carrying the server's message", () => {
    const msg = 'NetworkPolicy.networking.k8s.io "default-deny-all" is invalid: spec.policyTypes[0]: Unsupported value: "Sideways"';
    const f = asFailure(toActivityError(status(422, 'Invalid', msg), what));
    expect(f.type).toBe('KubernetesRejected');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toBe(`${what}: HTTP 422 Invalid: ${msg}`);
  });

  it('400 → non-retryable KubernetesRejected', () => {
    const f = asFailure(toActivityError(status(400, 'BadRequest'), what));
    expect(f.type).toBe('KubernetesRejected');
    expect(f.nonRetryable).toBe(true);
  });

  it('409 Conflict → non-retryable KubernetesConflict', () => {
    const f = asFailure(toActivityError(status(409, 'Conflict', 'Apply failed with 1 conflict'), what));
    expect(f.type).toBe('KubernetesConflict');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('Apply failed with 1 conflict');
    expect(f.message).toContain(what);
  });

  it.each([429, 500, 503, 504])('%i → retryable KubernetesUnavailable', (code) => {
    const f = asFailure(toActivityError(status(code, 'ServiceUnavailable', 'the server is currently unable to handle the request'), what));
    expect(f.type).toBe('KubernetesUnavailable');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toBe(`${what}: HTTP ${code} ServiceUnavailable: the server is currently unable to handle the request`);
  });

  it('a network error or a timeout → retryable KubernetesUnavailable with the cause in the message', async () => {
    const refused = asFailure(toActivityError(new Error('connect ECONNREFUSED 127.0.0.1:6443'), what));
    expect(refused.type).toBe('KubernetesUnavailable');
    expect(refused.nonRetryable).toBe(false);
    expect(refused.message).toBe(`${what}: connect ECONNREFUSED 127.0.0.1:6443`);

    const timedOut = asFailure(toActivityError(await timeoutReason(), what));
    expect(timedOut.type).toBe('KubernetesUnavailable');
    expect(timedOut.nonRetryable).toBe(false);
  });
});
