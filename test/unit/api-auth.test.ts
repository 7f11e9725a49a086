import type { Request, Response } from 'express';
import { SignJWT, UnsecuredJWT } from 'jose';
import { createAuth, safeEqual } from '../../src/api/auth';
import { HttpProblem } from '../../src/api/problem';

const options = { jwtSecret: 'k'.repeat(40), issuer: 'https://auth.example', audience: 'tp', clockToleranceSeconds: 5, maxAgeSeconds: 3600, serviceTokens: ['s'.repeat(40), 'r'.repeat(40)] };
const auth = createAuth(options);
const USER = '6f1c2c1e-6a55-4c0c-9d59-3b8d4f0a1e22';
const now = () => Math.floor(Date.now() / 1000);

const sign = (claims: Record<string, unknown>, secret = options.jwtSecret, alg = 'HS256') =>
  new SignJWT(claims).setProtectedHeader({ alg }).sign(new TextEncoder().encode(secret));
const good = (patch: Record<string, unknown> = {}) => ({ sub: USER, iss: options.issuer, aud: options.audience, iat: now(), exp: now() + 60, ...patch });

async function reason(token: string): Promise<string> {
  try {
    await auth.verifyUserToken(token);
  } catch (err) {
    expect(err).toBeInstanceOf(HttpProblem);
    expect((err as HttpProblem).slug).toBe('invalid-token');
    expect((err as HttpProblem).headers['WWW-Authenticate']).toMatch(/error="invalid_token"/);
    return (err as HttpProblem).detail;
  }
  throw new Error('the token was accepted');
}

describe('verifyUserToken', () => {
  it('accepts a valid token and returns the user id (lower-cased)', async () => {
    await expect(auth.verifyUserToken(await sign(good({ sub: USER.toUpperCase() })))).resolves.toEqual({ kind: 'user', userId: USER });
  });

  it('allows a few seconds of clock skew, no more', async () => {
    await expect(auth.verifyUserToken(await sign(good({ exp: now() - 3 })))).resolves.toMatchObject({ userId: USER });
    expect(await reason(await sign(good({ exp: now() - 30 })))).toBe('the token has expired');
    expect(await reason(await sign(good({ nbf: now() + 30 })))).toMatch(/nbf/);
  });

  it.each([
    ['another issuer', { iss: 'https://evil.example' }, /iss claim/],
    ['another audience', { aud: 'other' }, /aud claim/],
    ['no exp', { exp: undefined }, /exp claim/],
    ['a sub that is not a UUID', { sub: 'alice' }, /sub claim is not a user id/],
  ])('rejects a token with %s', async (_what, patch, expected) => {
    expect(await reason(await sign(good(patch)))).toMatch(expected);
  });

  it('requires iat, and refuses a token older than the maximum age or claiming a longer lifetime (JWT_MAX_AGE_SECONDS)', async () => {
    expect(await reason(await sign(good({ iat: undefined })))).toBe('the token has no iat claim');
    expect(await reason(await sign(good({ iat: now() - 3700, exp: now() + 60 })))).toBe('the token was issued more than 3600 s ago (its iat)');
    expect(await reason(await sign(good({ iat: now() + 600, exp: now() + 900 })))).toBe("the token's iat claim is in the future");
    // Valid for 100 years: refused at once, not only once it is old.
    expect(await reason(await sign(good({ exp: now() + 100 * 365 * 86_400 })))).toBe('the token claims a lifetime (exp - iat) over 3600 s');
    await expect(auth.verifyUserToken(await sign(good({ iat: now() - 3000, exp: now() + 500 })))).resolves.toMatchObject({ userId: USER });
  });

  it('rejects other keys, other algorithms, unsigned tokens and garbage', async () => {
    expect(await reason(await sign(good(), 'x'.repeat(40)))).toMatch(/not a valid signed JWT/);
    expect(await reason(await sign(good(), options.jwtSecret, 'HS512'))).toMatch(/not a valid signed JWT/);
    expect(await reason(new UnsecuredJWT(good()).encode())).toMatch(/not a valid signed JWT/);
    expect(await reason('not.a.jwt')).toMatch(/not a valid signed JWT/);
  });
});

describe('safeEqual', () => {
  it('compares by value, including different lengths', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
    expect(safeEqual('', '')).toBe(true);
  });
});

describe('service tokens (a rotation: the new and the old token)', () => {
  const run = async (handler: 'requireService' | 'requireUser', token: string): Promise<string> => {
    const req = { headers: { authorization: `Bearer ${token}` } } as unknown as Request;
    const res = { locals: {} as Record<string, unknown> } as unknown as Response;
    try {
      await auth[handler](req, res, () => undefined);
      return `accepted as ${(res.locals.principal as { kind: string }).kind}`;
    } catch (err) {
      return err instanceof HttpProblem ? `${err.slug}: ${err.detail}` : String(err);
    }
  };

  it('accepts each configured token, and no other', async () => {
    expect(await run('requireService', 's'.repeat(40))).toBe('accepted as service');
    expect(await run('requireService', 'r'.repeat(40))).toBe('accepted as service');
    expect(await run('requireService', 't'.repeat(40))).toMatch(/^invalid-token: /);
  });

  it('a service token where a user token is expected is refused, naming the admin port', async () => {
    expect(await run('requireUser', 'r'.repeat(40))).toBe('forbidden: the service token is not a user token; the service token is accepted on the internal admin port only');
  });
});
