import { ApplicationFailure } from '@temporalio/common';
import { DatabaseError } from 'pg';
import { isFinalDbError, toDbActivityError } from '../../src/db/errors';

/** Shaped like what Prisma 7 with @prisma/adapter-pg throws (seen against PostgreSQL 15). */
function prismaError(code: string, sqlstate?: string, message = 'boom'): Error {
  const err = new Error(`\nInvalid invocation:\n\n${message}`) as Error & { code: string; meta?: object };
  err.name = 'PrismaClientKnownRequestError';
  err.code = code;
  if (sqlstate) err.meta = { modelName: 'Tenant', driverAdapterError: { name: 'DriverAdapterError', cause: { code: sqlstate, message } } };
  return err;
}

/** What node-postgres raises for an error the server sent (the worker's activities use the pool directly). */
function pgError(sqlstate: string, message = 'boom'): Error {
  const err = new DatabaseError(message, 100, 'error');
  err.code = sqlstate;
  return err;
}

describe('database error mapping', () => {
  it.each([
    ['check constraint', prismaError('P2039', '23514'), true],
    ['unique violation', prismaError('P2002', '23505'), true],
    ['value too long', prismaError('P2039', '22001'), true],
    ['table missing (not migrated)', prismaError('P2039', '42P01'), true],
    ['record to update not found', prismaError('P2025'), true],
    ['cannot reach server', prismaError('P1001'), false],
    ['connection lost mid-query', prismaError('P2039', '08006'), false],
    ['deadlock', prismaError('P2039', '40P01'), false],
    ['serialization failure', prismaError('P2039', '40001'), false],
    ['admin shutdown', prismaError('P2039', '57P01'), false],
    ['too many connections', prismaError('P2039', '53300'), false],
    ['node-postgres: check constraint', pgError('23514'), true],
    ['node-postgres: invalid uuid', pgError('22P02'), true],
    ['node-postgres: column missing (not migrated)', pgError('42703'), true],
    ['node-postgres: statement timeout', pgError('57014'), false],
    ['node-postgres: admin shutdown', pgError('57P01'), false],
    ['node-postgres: deadlock', pgError('40P01'), false],
  ])('%s → final: %s', (_name, err, final) => {
    expect(isFinalDbError(err)).toBe(final);
    const mapped = toDbActivityError(err, 'update tenant status') as ApplicationFailure;
    expect(mapped).toBeInstanceOf(ApplicationFailure);
    expect(mapped.nonRetryable).toBe(final);
    expect(mapped.type).toBe(final ? 'DatabaseRejected' : 'DatabaseUnavailable');
    expect(mapped.message).toMatch(/^update tenant status: /);
  });

  it('tells the operator to migrate when a table or column is missing', () => {
    const mapped = toDbActivityError(prismaError('P2039', '42P01', 'relation "tenants" does not exist'), 'record tenant');
    expect(mapped.message).toBe(
      'record tenant: relation "tenants" does not exist (P2039, SQLSTATE 42P01) (the database schema is behind the code: run the migrations, `npm run db:migrate`)',
    );
  });

  it('names the SQLSTATE of a node-postgres error and the migration hint', () => {
    const mapped = toDbActivityError(pgError('42P01', 'relation "tenant_steps" does not exist'), 'started (step log)');
    expect(mapped.message).toBe(
      'started (step log): relation "tenant_steps" does not exist (SQLSTATE 42P01) (the database schema is behind the code: run the migrations, `npm run db:migrate`)',
    );
  });

  it('leaves errors that are not from the database alone', () => {
    const plain = new Error('something else');
    expect(isFinalDbError(plain)).toBe(false);
    expect(toDbActivityError(plain, 'x')).toBe(plain);
  });
});
