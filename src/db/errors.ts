/**
 * The one place that decides what a database error means for an activity: worth retrying
 * (connection lost, deadlock, server restarting) or final (the data or the schema is wrong, and
 * the same statement will fail again). Errors come from Prisma, or from node-postgres where a
 * statement goes through the pool directly (`poolOf`).
 */
import { ApplicationFailure } from '@temporalio/common';
import { DatabaseError } from 'pg';

interface PrismaLikeError {
  name?: string;
  code?: string;
  message?: string;
  meta?: { driverAdapterError?: { cause?: { code?: string; message?: string } } };
}

/** SQLSTATE classes that will not change on retry: data exception, integrity, syntax/undefined object. */
const FINAL_SQLSTATE_CLASSES = new Set(['22', '23', '42']);
/** Prisma codes with the same meaning: value too long, unique/foreign-key/constraint/null violations, record missing. */
const FINAL_PRISMA_CODES = new Set(['P2000', 'P2002', 'P2003', 'P2004', 'P2011', 'P2025']);

export function isPrismaError(err: unknown): err is PrismaLikeError {
  return !!err && typeof err === 'object' && typeof (err as PrismaLikeError).name === 'string' && (err as PrismaLikeError).name!.startsWith('PrismaClient');
}

/** An error the PostgreSQL server sent, as node-postgres raises it (its `code` is the SQLSTATE). */
export function isPgError(err: unknown): err is DatabaseError {
  return err instanceof DatabaseError;
}

/** An error from the database: Prisma's, or the server's through node-postgres. */
export function isDbError(err: unknown): err is PrismaLikeError | DatabaseError {
  return isPrismaError(err) || isPgError(err);
}

export function sqlState(err: PrismaLikeError | DatabaseError): string | undefined {
  return isPgError(err) ? err.code : err.meta?.driverAdapterError?.cause?.code;
}

export function isFinalDbError(err: unknown): boolean {
  if (!isDbError(err)) return false;
  const state = sqlState(err);
  if (state) return FINAL_SQLSTATE_CLASSES.has(state.slice(0, 2));
  return !isPgError(err) && err.code !== undefined && FINAL_PRISMA_CODES.has(err.code);
}

/** The error an activity throws for a database failure, with `what` naming the action. */
export function toDbActivityError(err: unknown, what: string): Error {
  if (!isDbError(err)) return err instanceof Error ? err : new Error(String(err));
  const state = sqlState(err);
  const detail = isPgError(err)
    ? err.message
    : (err.meta?.driverAdapterError?.cause?.message ?? err.message?.split('\n').filter(Boolean).pop() ?? 'unknown error');
  const code = [isPgError(err) ? undefined : err.code, state && `SQLSTATE ${state}`].filter(Boolean).join(', ');
  const hint = state === '42P01' || state === '42703' ? ' (the database schema is behind the code: run the migrations, `npm run db:migrate`)' : '';
  const message = `${what}: ${detail}${code ? ` (${code})` : ''}${hint}`;
  return isFinalDbError(err)
    ? ApplicationFailure.nonRetryable(message, 'DatabaseRejected')
    : ApplicationFailure.retryable(message, 'DatabaseUnavailable');
}
