/**
 * Keyset pagination over (created_at, id): stable while rows are added, and each page is one
 * indexed range read however deep the caller pages (OFFSET would rescan every skipped row).
 * The cursor is opaque to clients: base64url of the last row's sort key.
 */
import { HttpProblem } from './problem';
import { isUuid } from './ids';

export interface PageKey {
  createdAt: Date;
  id: string;
}

export function encodeCursor(key: PageKey): string {
  return Buffer.from(JSON.stringify([key.createdAt.toISOString(), key.id]), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): PageKey {
  const invalid = new HttpProblem('invalid-request', 'the cursor is not one this API returned; start again without it', {
    errors: [{ path: 'cursor', message: 'unknown cursor' }],
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid;
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw invalid;
  const [at, id] = parsed as unknown[];
  const createdAt = typeof at === 'string' ? new Date(at) : new Date(NaN);
  if (Number.isNaN(createdAt.getTime()) || typeof id !== 'string' || !isUuid(id)) throw invalid;
  return { createdAt, id };
}

/** The Prisma `where` fragment for rows after the cursor, in (createdAt, id) order. */
export function afterCursor(cursor: string | undefined): Record<string, unknown> {
  if (!cursor) return {};
  const key = decodeCursor(cursor);
  return { OR: [{ createdAt: { gt: key.createdAt } }, { createdAt: key.createdAt, id: { gt: key.id } }] };
}

export const PAGE_ORDER = [{ createdAt: 'asc' as const }, { id: 'asc' as const }];

/** Splits `limit + 1` fetched rows into the page and the cursor of the next one (null at the end). */
export function page<T extends PageKey>(rows: T[], limit: number): { rows: T[]; nextCursor: string | null } {
  if (rows.length <= limit) return { rows, nextCursor: null };
  const kept = rows.slice(0, limit);
  return { rows: kept, nextCursor: encodeCursor(kept[kept.length - 1]!) };
}
