/**
 * Two kinds of callers:
 * - users, with a bearer JWT (HS256, issuer and audience checked, small clock tolerance) whose
 *   `sub` is their user id (a UUID); they may read their own tenants;
 * - the internal service, with the bearer SERVICE_TOKEN (compared in constant time); it may
 *   provision and deprovision, and read any tenant.
 *
 * Contract: no bearer token → 401 `unauthorized`; a token that is neither a valid JWT nor the
 * service token → 401 `invalid-token`; a valid credential of the other kind → 403 `forbidden`.
 * Tokens are never logged or echoed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Request } from 'express';
import { errors as joseErrors, jwtVerify } from 'jose';
import { HttpProblem } from './problem';
import { isUuid } from './ids';

export interface AuthOptions {
  jwtSecret: string;
  issuer: string;
  audience: string;
  clockToleranceSeconds: number;
  /** The oldest token accepted (from `iat`) and the longest lifetime (`exp - iat`) a token may claim. */
  maxAgeSeconds: number;
  /** Every accepted service token (more than one during a rotation). */
  serviceTokens: readonly string[];
}

export interface UserPrincipal {
  kind: 'user';
  userId: string;
}

const CHALLENGE = 'Bearer realm="tenant-provisioner"';

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Constant-time comparison that does not leak the expected length either (both sides are hashed). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

function bearer(req: Request): string {
  const header = req.headers.authorization;
  if (!header) throw new HttpProblem('unauthorized', 'send an Authorization: Bearer <token> header', {}, { 'WWW-Authenticate': CHALLENGE });
  const match = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)[ ]*$/i.exec(header);
  if (!match) {
    throw new HttpProblem('invalid-token', 'the Authorization header is not a bearer token', {}, { 'WWW-Authenticate': `${CHALLENGE}, error="invalid_request"` });
  }
  return match[1]!;
}

const invalidToken = (detail: string) =>
  new HttpProblem('invalid-token', detail, {}, { 'WWW-Authenticate': `${CHALLENGE}, error="invalid_token"` });

export function createAuth(options: AuthOptions) {
  const key = new TextEncoder().encode(options.jwtSecret);

  /** Verifies a user JWT; throws `invalid-token` problems with a reason that reveals nothing secret. */
  async function verifyUserToken(token: string): Promise<UserPrincipal> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: ['HS256'],
        issuer: options.issuer,
        audience: options.audience,
        clockTolerance: options.clockToleranceSeconds,
        maxTokenAge: options.maxAgeSeconds,
        requiredClaims: ['sub', 'exp', 'iat'],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw invalidToken(/"iat"/.test(err.message) ? `the token was issued more than ${options.maxAgeSeconds} s ago (its iat)` : 'the token has expired');
      if (err instanceof joseErrors.JWTClaimValidationFailed) {
        if (err.reason === 'missing') throw invalidToken(`the token has no ${err.claim} claim`);
        if (err.claim === 'iat') throw invalidToken("the token's iat claim is in the future");
        throw invalidToken(`the token's ${err.claim} claim is not accepted`);
      }
      throw invalidToken('the token is not a valid signed JWT for this service');
    }
    if (typeof payload.sub !== 'string' || !isUuid(payload.sub)) throw invalidToken("the token's sub claim is not a user id");
    // A token minted to last for years is refused at once, not only once it is old.
    if (payload.exp! - payload.iat! > options.maxAgeSeconds) throw invalidToken(`the token claims a lifetime (exp - iat) over ${options.maxAgeSeconds} s`);
    return { kind: 'user', userId: payload.sub.toLowerCase() };
  }

  // Every token is compared, so the time taken does not tell which one (or whether any) matched.
  const isServiceToken = (token: string) => options.serviceTokens.map((t) => safeEqual(token, t)).includes(true);

  /** Users only: sets `res.locals.principal`. */
  const requireUser: RequestHandler = async (req, res, next) => {
    const token = bearer(req);
    if (isServiceToken(token)) throw new HttpProblem('forbidden', 'the service token is not a user token; the service token is accepted on the internal admin port only');
    res.locals.principal = await verifyUserToken(token);
    next();
  };

  /** The internal service only. */
  const requireService: RequestHandler = async (req, res, next) => {
    const token = bearer(req);
    if (isServiceToken(token)) {
      res.locals.principal = { kind: 'service' };
      next();
      return;
    }
    const user = await verifyUserToken(token).catch(() => undefined);
    if (user) throw new HttpProblem('forbidden', 'this endpoint is internal: user tokens may not call it');
    throw invalidToken('the token is neither the service token nor a valid user token');
  };

  /** Either: a user reads their own tenant, the service any tenant (`res.locals.principal.kind` tells which). */
  const requireUserOrService: RequestHandler = async (req, res, next) => {
    const token = bearer(req);
    res.locals.principal = isServiceToken(token) ? { kind: 'service' } : await verifyUserToken(token);
    next();
  };

  return { requireUser, requireService, requireUserOrService, verifyUserToken };
}

export function principalUserId(locals: Record<string, unknown>): string {
  const p = locals.principal as UserPrincipal | undefined;
  if (p?.kind !== 'user') throw new Error('requireUser did not run for this route');
  return p.userId;
}
