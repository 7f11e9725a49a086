/**
 * Errors as RFC 9457 problem details (`application/problem+json`), one stable shape everywhere:
 * `{ type, title, status, detail, instance, requestId, ...extensions }`.
 *
 * `type` is a tag URI (RFC 4151), which RFC 9457 suggests for problem types that are identifiers
 * rather than documentation pages; clients switch on it, never on `detail`.
 * Responses never carry stack traces, configuration or the text of unexpected errors.
 */
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { issueText, zodIssues } from '../validation';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const TYPE_PREFIX = 'tag:tenant-provisioner,2026:problems/';

/** Every problem the API answers with: slug, status and title. */
export const PROBLEMS = {
  'invalid-request': { status: 400, title: 'The request is invalid' },
  'malformed-json': { status: 400, title: 'The request body is not valid JSON' },
  'missing-signature': { status: 400, title: 'The Stripe-Signature header is missing' },
  'invalid-signature': { status: 400, title: 'The Stripe signature does not match the payload' },
  'stale-signature': { status: 400, title: 'The Stripe signature timestamp is outside the tolerance' },
  'malformed-event': { status: 400, title: 'The body is not a Stripe event' },
  'missing-idempotency-key': { status: 400, title: 'The Idempotency-Key header is required' },
  unauthorized: { status: 401, title: 'Authentication is required' },
  'invalid-token': { status: 401, title: 'The bearer token is not valid' },
  forbidden: { status: 403, title: 'These credentials may not use this endpoint' },
  'not-found': { status: 404, title: 'Not found' },
  'tenant-not-found': { status: 404, title: 'No such tenant' },
  'idempotency-key-in-use': { status: 409, title: 'A request with this Idempotency-Key is still running' },
  'tenant-conflict': { status: 409, title: 'The tenant belongs to another user' },
  'tenant-not-running': { status: 409, title: 'The tenant has no running lifecycle workflow' },
  'tenant-state-conflict': { status: 409, title: "The tenant's state does not allow this action" },
  'payload-too-large': { status: 413, title: 'The request body is too large' },
  'unsupported-media-type': { status: 415, title: 'The request body must be application/json' },
  'idempotency-key-reused': { status: 422, title: 'The Idempotency-Key was used with a different request' },
  'unknown-plan': { status: 422, title: 'No such plan' },
  'unknown-user': { status: 422, title: 'No such user' },
  'rate-limited': { status: 429, title: 'Too many requests; slow down' },
  'internal-error': { status: 500, title: 'Internal error' },
  'event-not-processed': { status: 500, title: 'The event was recorded but could not be processed' },
  'event-not-found': { status: 404, title: 'No such Stripe event' },
  'dependency-unavailable': { status: 503, title: 'A dependency is unavailable; retry later' },
  'not-ready': { status: 503, title: 'The service is not ready' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemSlug = keyof typeof PROBLEMS;

export function problemType(slug: ProblemSlug): string {
  return `${TYPE_PREFIX}${slug}`;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  requestId?: string;
  [extension: string]: unknown;
}

/** Thrown (or passed to next) by handlers; the error handler renders it. */
export class HttpProblem extends Error {
  override readonly name = 'HttpProblem';
  readonly status: number;

  constructor(
    readonly slug: ProblemSlug,
    readonly detail: string,
    readonly extensions: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.status = PROBLEMS[slug].status;
  }
}

/** A dependency (PostgreSQL, Temporal, the Stripe API) failed or timed out: the caller should retry. */
export class DependencyError extends Error {
  override readonly name = 'DependencyError';

  constructor(
    readonly dependency: 'postgres' | 'temporal' | 'stripe',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const DEPENDENCY_NAMES = { postgres: 'PostgreSQL', temporal: 'Temporal', stripe: 'the Stripe API' } as const;

export function sendProblem(res: Response, problem: HttpProblem): void {
  const body: ProblemBody = {
    type: problemType(problem.slug),
    title: PROBLEMS[problem.slug].title,
    status: problem.status,
    detail: problem.detail,
    instance: res.req.originalUrl.split('?')[0],
    ...(typeof res.locals.requestId === 'string' ? { requestId: res.locals.requestId } : {}),
    ...problem.extensions,
  };
  for (const [name, value] of Object.entries(problem.headers)) res.setHeader(name, value);
  res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}

/** Zod issues as `errors: [{ path, message }]`, without echoing the rejected values back. */
export function validationProblem(error: z.ZodError, what: string): HttpProblem {
  const errors = zodIssues(error);
  const first = errors[0];
  return new HttpProblem('invalid-request', `${what} is invalid${first ? `: ${issueText(first)}` : ''}`, { errors });
}

/** True for errors raised by the Prisma client or its PostgreSQL adapter (connection, timeout, pool). */
export function isDatabaseError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return /^PrismaClient|^DriverAdapterError$/.test(err.name) || (typeof code === 'string' && /^P1\d{3}$|^P2024$|^P2028$/.test(code));
}

/** Errors thrown by express's body parsers carry a `type` and a `status`. */
function bodyParserProblem(err: unknown): HttpProblem | undefined {
  if (!err || typeof err !== 'object' || !('type' in err) || typeof err.type !== 'string') return undefined;
  switch (err.type) {
    case 'entity.too.large':
      return new HttpProblem('payload-too-large', 'the request body exceeds the size limit of this endpoint');
    case 'entity.parse.failed':
      return new HttpProblem('malformed-json', 'the request body could not be parsed as JSON');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new HttpProblem('unsupported-media-type', 'the request body has an unsupported encoding or charset');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new HttpProblem('invalid-request', 'the request body was incomplete or inconsistent with its headers');
    default:
      return undefined;
  }
}

/** `hint` may say where a route is served instead (the public app names the admin port's routes). */
export function notFoundHandler(hint: (req: { method: string; path: string }) => string | undefined = () => undefined): RequestHandler {
  return (req, res) => sendProblem(res, new HttpProblem('not-found', hint(req) ?? `no route for ${req.method} ${req.path}`));
}

/** The last middleware: everything that went wrong becomes a problem document. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    let problem = err instanceof HttpProblem ? err : bodyParserProblem(err);
    if (!problem) {
      const dependency = err instanceof DependencyError ? err.dependency : isDatabaseError(err) ? 'postgres' : undefined;
      if (dependency) {
        logger.warn({ err, requestId: res.locals.requestId, dependency }, 'dependency unavailable');
        problem = new HttpProblem('dependency-unavailable', `${DEPENDENCY_NAMES[dependency]} is unavailable; retry later`, { dependency }, { 'Retry-After': '5' });
      } else {
        logger.error({ err, requestId: res.locals.requestId, method: req.method, path: req.path }, 'unhandled error');
        problem = new HttpProblem('internal-error', 'an unexpected error occurred; it has been logged');
      }
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    sendProblem(res, problem);
  };
}
