/**
 * Idempotency-Key for the internal endpoints (the same contract as Stripe's own API):
 * - the first request with a key runs, and its response (status and body) is stored with a hash of
 *   the request;
 * - the same key with the same request gets the stored response again (`Idempotent-Replayed: true`);
 * - the same key with a different request → 422 `idempotency-key-reused`;
 * - the same key while the first request still runs → 409 `idempotency-key-in-use` (retry later).
 * 5xx responses are not stored: the key is released so that a retry runs again. A key whose first
 * request never finished (the process died) is taken over after `staleAfterMs`.
 */
import { createHash } from 'node:crypto';
import type { Request } from 'express';
import type { Db } from '../db/client';
import type { Prisma } from '../generated/prisma/client';
import { HttpProblem } from './problem';

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** JSON with object keys sorted, so that key order does not change the hash. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function requestHash(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${canonicalJson(body)}`).digest('hex');
}

export function idempotencyKeyOf(req: Request): string {
  const key = req.get(IDEMPOTENCY_HEADER);
  if (key === undefined || key === '') {
    throw new HttpProblem('missing-idempotency-key', `send an ${IDEMPOTENCY_HEADER} header (1-255 visible ASCII characters, e.g. a UUID)`);
  }
  if (!KEY_PATTERN.test(key)) throw new HttpProblem('invalid-request', `the ${IDEMPOTENCY_HEADER} header must be 1-255 visible ASCII characters`);
  return key;
}

export interface StoredResponse {
  status: number;
  body: Record<string, unknown>;
  replayed: boolean;
}

/**
 * Runs `handler` at most once per key and request (see the module comment). The handler returns
 * the response to send; problems it throws with a 4xx status are stored like any other response.
 */
export async function runIdempotent(
  db: Db,
  key: string,
  hash: string,
  handler: () => Promise<{ status: number; body: Record<string, unknown> }>,
  staleAfterMs = 60_000,
): Promise<StoredResponse> {
  const claimed = await db.idempotencyKey.createMany({ data: [{ key, requestHash: hash }], skipDuplicates: true });
  if (claimed.count === 0) {
    const existing = await db.idempotencyKey.findUnique({ where: { key } });
    if (existing && existing.requestHash !== hash) {
      throw new HttpProblem('idempotency-key-reused', `the ${IDEMPOTENCY_HEADER} was first used with a different request; use a new key for a new request`);
    }
    if (existing && existing.statusCode !== null) {
      return { status: existing.statusCode, body: existing.response as Record<string, unknown>, replayed: true };
    }
    // Still running, or abandoned by a process that died: take over only an abandoned one.
    const takeOver = await db.idempotencyKey.updateMany({
      where: { key, requestHash: hash, statusCode: null, updatedAt: { lt: new Date(Date.now() - staleAfterMs) } },
      data: { updatedAt: new Date() },
    });
    if (existing && takeOver.count === 0) {
      throw new HttpProblem('idempotency-key-in-use', 'a request with this key is still running; retry shortly', {}, { 'Retry-After': '1' });
    }
    if (!existing) return runIdempotent(db, key, hash, handler, staleAfterMs); // released meanwhile
  }

  let response: { status: number; body: Record<string, unknown> };
  try {
    response = await handler();
  } catch (err) {
    if (err instanceof HttpProblem && err.status < 500) {
      response = { status: err.status, body: { problem: { slug: err.slug, detail: err.detail, extensions: err.extensions } } };
      await store(db, key, response);
      throw err;
    }
    await db.idempotencyKey.delete({ where: { key } }).catch(() => undefined);
    throw err;
  }
  if (response.status >= 500) {
    await db.idempotencyKey.delete({ where: { key } }).catch(() => undefined);
  } else {
    await store(db, key, response);
  }
  return { ...response, replayed: false };
}

async function store(db: Db, key: string, response: { status: number; body: Record<string, unknown> }): Promise<void> {
  await db.idempotencyKey.update({ where: { key }, data: { statusCode: response.status, response: response.body as Prisma.InputJsonObject } });
}

/** Rebuilds a stored 4xx problem so that a replay answers exactly as the first request did. */
export function storedProblem(body: Record<string, unknown>): HttpProblem | undefined {
  const p = body.problem as { slug?: unknown; detail?: unknown; extensions?: unknown } | undefined;
  if (!p || typeof p.slug !== 'string' || typeof p.detail !== 'string') return undefined;
  return new HttpProblem(p.slug as HttpProblem['slug'], p.detail, (p.extensions as Record<string, unknown> | undefined) ?? {});
}
