import pg from 'pg';
import { DependencyError } from '../../src/api/problem';
import { unavailable } from '../../src/api/webhook-store';

function serverError(code: string): pg.DatabaseError {
  const err = new pg.DatabaseError(`server said ${code}`, 0, 'error');
  err.code = code;
  return err;
}

describe('PostgreSQL errors on the webhook path', () => {
  it.each([
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['a broken pipe (a five-letter code that is not a SQLSTATE)', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })],
    ['a pool timeout', new Error('timeout exceeded when trying to connect')],
    ['an administrator shutdown', serverError('57P01')],
    ['a statement timeout', serverError('57014')],
    ['too many connections', serverError('53300')],
    ['a deadlock', serverError('40P01')],
  ])('%s is the database being unavailable: a 503', (_, err) => {
    const mapped = unavailable(err);
    expect(mapped).toBeInstanceOf(DependencyError);
    expect(mapped).toMatchObject({ dependency: 'postgres', cause: err });
    expect((mapped as Error).message).toContain((err as Error).message);
  });

  it.each([
    ['a unique violation', serverError('23505')],
    ['a syntax error', serverError('42601')],
    ['a missing table (schema behind the code)', serverError('42P01')],
  ])('%s is the statement at fault: thrown as it is (a 500)', (_, err) => {
    expect(unavailable(err)).toBe(err);
  });
});
