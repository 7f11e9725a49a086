/**
 * The migrator against the real PostgreSQL: Prisma's `_prisma_migrations` bookkeeping, refusal of
 * edited and failed migrations, and agreement between the migrated tables and the Prisma schema.
 * Each case gets its own throw-away database next to the run's DATABASE_URL.
 */
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, readdir, rm, writeFile, appendFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { Prisma } from '../../src/generated/prisma/client';
import { DEFAULT_MIGRATIONS_DIR, MigrationError, dropDatabase, ensureDatabase, migrate } from '../../src/db/migrate';
import { ROOT, env } from './helpers';

interface MigrationRow {
  id: string;
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
  applied_steps_count: number;
}

const created: string[] = [];
const tmpDirs: string[] = [];

/** A fresh database URL next to DATABASE_URL (same server, unique name); created, dropped in afterAll. */
async function freshDatabase(): Promise<string> {
  const url = new URL(env('DATABASE_URL'));
  const base = decodeURIComponent(url.pathname.slice(1)).slice(0, 40);
  url.pathname = `/${base}_mig_${randomBytes(4).toString('hex')}`;
  created.push(url.toString());
  await expect(ensureDatabase(url.toString())).resolves.toBe(true);
  return url.toString();
}

/** A copy of prisma/migrations that a test may edit. */
async function migrationsCopy(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'migrations-'));
  tmpDirs.push(dir);
  await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

async function addMigration(dir: string, name: string, sql: string): Promise<void> {
  await mkdir(path.join(dir, name));
  await writeFile(path.join(dir, name, 'migration.sql'), sql);
}

async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function rows(url: string): Promise<MigrationRow[]> {
  return withClient(url, async (c) => (await c.query<MigrationRow>('SELECT * FROM "_prisma_migrations" ORDER BY started_at, migration_name')).rows);
}

async function tableExists(url: string, table: string): Promise<boolean> {
  const res = await withClient(url, (c) => c.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`public."${table}"`]));
  return (res.rows[0]?.t ?? null) !== null;
}

async function migrationNames(): Promise<string[]> {
  const entries = await readdir(path.join(ROOT, 'prisma/migrations'), { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

afterAll(async () => {
  await Promise.all(created.map((url) => dropDatabase(url)));
  await Promise.all(tmpDirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('migrate', () => {
  it('applies every migration to an empty database with Prisma bookkeeping, then nothing the second time', async () => {
    const url = await freshDatabase();
    const names = await migrationNames();
    expect(names.length).toBeGreaterThan(0);
    expect(await tableExists(url, '_prisma_migrations')).toBe(false);

    await expect(migrate(url)).resolves.toStrictEqual({ applied: names, alreadyApplied: [] });

    const applied = await rows(url);
    expect(applied.map((r) => r.migration_name)).toEqual(names);
    for (const row of applied) {
      const sql = await readFile(path.join(ROOT, 'prisma/migrations', row.migration_name, 'migration.sql'), 'utf8');
      expect(row.checksum).toBe(sha256(sql));
      expect(row.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.rolled_back_at).toBeNull();
      expect(row.logs).toBeNull();
      expect(row.applied_steps_count).toBe(1);
      expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
    }
    for (const table of ['users', 'tenants', 'tenant_steps', 'subscriptions', 'stripe_events']) {
      expect(await tableExists(url, table)).toBe(true);
    }

    await expect(migrate(url)).resolves.toStrictEqual({ applied: [], alreadyApplied: names });
    expect(await rows(url)).toStrictEqual(applied);
  });

  it('applies only a newly added migration', async () => {
    const url = await freshDatabase();
    const dir = await migrationsCopy();
    const names = await migrationNames();
    await migrate(url, dir);

    await addMigration(dir, '29990101000000_add_notes', 'CREATE TABLE "notes" ("id" INTEGER PRIMARY KEY);\n');
    await expect(migrate(url, dir)).resolves.toStrictEqual({ applied: ['29990101000000_add_notes'], alreadyApplied: names });
    expect(await tableExists(url, 'notes')).toBe(true);
  });

  it('refuses a migration edited after it was applied, naming it and asking for a new migration', async () => {
    const url = await freshDatabase();
    const dir = await migrationsCopy();
    const [first] = await migrationNames();
    await migrate(url, dir);

    await appendFile(path.join(dir, first!, 'migration.sql'), '\n-- an afterthought\nCREATE INDEX "users_email_idx" ON "users"("email");\n');
    const err = await migrate(url, dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as Error).message).toContain(`migration ${first} was edited after it was applied`);
    expect((err as Error).message).toContain('add a new migration');
    // Nothing ran: the edit did not reach the database.
    await withClient(url, async (c) => {
      const { rowCount } = await c.query("SELECT 1 FROM pg_indexes WHERE indexname = 'users_email_idx'");
      expect(rowCount).toBe(0);
    });
  });

  it('records a failed migration, rolls its partial changes back, and refuses further runs until resolved', async () => {
    const url = await freshDatabase();
    const dir = await migrationsCopy();
    const names = await migrationNames();
    const broken = '29990101000000_broken';
    // The first statement succeeds; the second fails at execution time (not at parse time).
    await addMigration(dir, broken, 'CREATE TABLE "partial_thing" ("id" INTEGER);\nINSERT INTO "no_such_table" VALUES (1);\n');

    const err = await migrate(url, dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as Error).message).toContain(`migration ${broken} failed`);
    expect((err as Error).message).toContain('no_such_table');

    const after = await rows(url);
    expect(after.filter((r) => r.finished_at !== null).map((r) => r.migration_name)).toEqual(names);
    const failed = after.find((r) => r.migration_name === broken);
    expect(failed).toBeDefined();
    expect(failed!.finished_at).toBeNull();
    expect(failed!.rolled_back_at).toBeNull();
    expect(failed!.applied_steps_count).toBe(0);
    expect(failed!.logs).toContain('no_such_table');
    expect(await tableExists(url, 'partial_thing')).toBe(false);

    // Even with the file fixed, the run refuses until someone resolves the failed row.
    await writeFile(path.join(dir, broken, 'migration.sql'), 'CREATE TABLE "partial_thing" ("id" INTEGER);\n');
    const again = await migrate(url, dir).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(MigrationError);
    expect((again as Error).message).toContain(`migration ${broken} failed earlier`);
    expect((again as Error).message).toContain(`prisma migrate resolve --rolled-back ${broken}`);
    expect(await tableExists(url, 'partial_thing')).toBe(false);

    // What `prisma migrate resolve --rolled-back` does: mark the row rolled back. Then it applies.
    await withClient(url, (c) => c.query('UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = $1', [broken]));
    await expect(migrate(url, dir)).resolves.toStrictEqual({ applied: [broken], alreadyApplied: names });
    expect(await tableExists(url, 'partial_thing')).toBe(true);
  });

  it('records a migration with a syntax error as failed, creating nothing', async () => {
    const url = await freshDatabase();
    const dir = await migrationsCopy();
    await addMigration(dir, '29990101000000_typo', 'CREATE TABLE "typo_thing" ("id" INTEGER);\nCREAT TABLE "x" ();\n');
    const err = await migrate(url, dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as Error).message).toMatch(/migration 29990101000000_typo failed: syntax error/);
    expect(await tableExists(url, 'typo_thing')).toBe(false);
    const failed = (await rows(url)).find((r) => r.migration_name === '29990101000000_typo');
    expect(failed?.logs).toMatch(/syntax error/);
  });
});

// ---------------------------------------------------------------------------------------------
// Migrated database vs. the Prisma schema.
//
// Prisma 7's generated client does not expose the DMMF (`Prisma.dmmf` is gone, and the runtime data
// model it embeds has no nullability), so the schema is read from prisma/schema.prisma with a small
// parser, cross-checked against the model and scalar-field names the generated client exports.

interface SchemaField {
  name: string;
  column: string;
  nullable: boolean;
}

interface SchemaModel {
  name: string;
  table: string;
  fields: SchemaField[];
}

function parseSchema(text: string): SchemaModel[] {
  const blocks = [...text.matchAll(/^model\s+(\w+)\s*\{([\s\S]*?)^\}/gm)];
  const modelNames = new Set(blocks.map((m) => m[1]!));
  return blocks.map(([, name, body]) => {
    const lines = body!.split('\n').map((l) => l.trim());
    const table = /^@@map\("([^"]+)"\)/.exec(lines.find((l) => l.startsWith('@@map(')) ?? '')?.[1] ?? name!;
    const fields: SchemaField[] = [];
    for (const line of lines) {
      if (!line || line.startsWith('/') || line.startsWith('@@')) continue;
      const m = /^(\w+)\s+(\w+)(\[\])?(\?)?(.*)$/.exec(line);
      if (!m) throw new Error(`cannot parse schema line in model ${name}: ${line}`);
      const [, fieldName, type, list, optional, rest] = m;
      if (modelNames.has(type!)) continue; // relation field: no column of its own
      if (list) throw new Error(`scalar list ${name}.${fieldName} is not handled by this parser`);
      fields.push({ name: fieldName!, column: /@map\("([^"]+)"\)/.exec(rest!)?.[1] ?? fieldName!, nullable: optional === '?' });
    }
    return { name: name!, table, fields };
  });
}

describe('migrated database vs. prisma/schema.prisma', () => {
  let models: SchemaModel[];

  beforeAll(async () => {
    models = parseSchema(await readFile(path.join(ROOT, 'prisma/schema.prisma'), 'utf8'));
  });

  it('the parsed schema has the models and scalar fields of the generated client', () => {
    expect(models.map((m) => m.name).sort()).toEqual(Object.values(Prisma.ModelName).sort());
    const exported = Prisma as unknown as Record<string, Record<string, string> | undefined>;
    for (const model of models) {
      const scalarFields = exported[`${model.name}ScalarFieldEnum`];
      expect(scalarFields).toBeDefined();
      expect(model.fields.map((f) => f.name).sort()).toEqual(Object.values(scalarFields!).sort());
    }
  });

  it('every mapped column exists with the schema’s nullability, and no table has unmapped columns', async () => {
    // The run's database, migrated by the integration globalSetup with the real prisma/migrations.
    const columns = await withClient(env('DATABASE_URL'), async (c) => {
      const res = await c.query<{ table_name: string; column_name: string; is_nullable: 'YES' | 'NO' }>(
        "SELECT table_name, column_name, is_nullable FROM information_schema.columns WHERE table_schema = 'public'",
      );
      return res.rows;
    });
    const nullability = new Map(columns.map((r) => [`${r.table_name}.${r.column_name}`, r.is_nullable === 'YES']));

    const missing: string[] = [];
    const mismatched: string[] = [];
    for (const model of models) {
      for (const field of model.fields) {
        const key = `${model.table}.${field.column}`;
        const nullable = nullability.get(key);
        if (nullable === undefined) missing.push(`${key} (${model.name}.${field.name})`);
        else if (nullable !== field.nullable) mismatched.push(`${key}: schema ${field.nullable ? 'optional' : 'required'}, database ${nullable ? 'NULL' : 'NOT NULL'}`);
      }
    }
    expect(missing).toEqual([]);
    expect(mismatched).toEqual([]);

    const mapped = new Set(models.flatMap((m) => m.fields.map((f) => `${m.table}.${f.column}`)));
    const tables = new Set(models.map((m) => m.table));
    const unmapped = columns.filter((r) => tables.has(r.table_name) && !mapped.has(`${r.table_name}.${r.column_name}`));
    expect(unmapped).toEqual([]);
  });
});
