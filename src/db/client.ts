import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client';

export type Db = PrismaClient;

export interface DbOptions {
  /** Pool size per process; the worker's activity concurrency bounds how many it really uses. */
  maxConnections?: number;
}

/** The node-postgres pool under each client, shared by the statements that skip Prisma (see `poolOf`). */
const pools = new WeakMap<Db, pg.Pool>();

/** One Prisma client over a node-postgres pool, with bounded connect and statement times. */
export function createDb(databaseUrl: string, options: DbOptions = {}): Db {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: 15_000,
    query_timeout: 20_000,
    // A transaction left open by a bug or a stalled caller must not hold its locks for ever.
    idle_in_transaction_session_timeout: 30_000,
    // Statements queued on one connection go out without waiting for the previous answer (the
    // webhook's locked decision sends BEGIN, its lock and its read together). Prisma awaits each
    // statement, so its traffic is unchanged.
    pipeline: true,
  });
  // An idle connection that the server closes (a restart, a terminated backend) is dropped by the
  // pool, and the next query opens a new one; without a listener the pool's 'error' event would
  // end the process.
  pool.on('error', () => undefined);
  const db = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
  pools.set(db, pool);
  // Prisma ends the pool only if its engine ever started; a client used only through the pool
  // (the worker's activities) must let go of its connections too.
  const disconnect = db.$disconnect.bind(db);
  Object.defineProperty(db, '$disconnect', {
    value: async () => {
      await disconnect();
      if (!pool.ending) await pool.end();
    },
  });
  return db;
}

/**
 * The pool a client created by `createDb` runs on. Statements sent through it skip Prisma's query
 * engine, which is worth it on hot paths: the webhook, which answers hundreds of times a second,
 * and the worker's activities, whose step log and tenant row writes are all plain SQL. A worker
 * that never starts Prisma's engine never loads its WebAssembly query compiler either.
 */
export function poolOf(db: Db): pg.Pool {
  const pool = pools.get(db);
  if (!pool) throw new Error('this database client was not created by createDb, so it has no pool to share');
  return pool;
}
