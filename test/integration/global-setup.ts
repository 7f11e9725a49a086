/**
 * Integration tests run against the real local stack (scripts/stack.sh up). This checks that each
 * server answers, then gives the run its own freshly migrated database, dropped again afterwards.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { ensureDatabase, migrate } from '../../src/db/migrate';

const ROOT = path.resolve(__dirname, '../..');

/** Reads `export KEY='value'` lines written by scripts/stack.sh into process.env (without overriding). */
export function loadStackEnv(): void {
  const file = process.env.STACK_ENV_FILE ?? path.join(ROOT, '.stack/env');
  if (!existsSync(file)) return;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^export ([A-Z_]+)='([^']*)'(.*)$/.exec(line);
    if (!m) continue;
    const [, key, value, rest] = m;
    if (key === 'PATH') {
      if (!process.env.PATH?.split(':').includes(value!)) process.env.PATH = `${value}:${process.env.PATH ?? ''}`;
      continue;
    }
    if (process.env[key!] === undefined && !rest) process.env[key!] = value;
  }
}

export default async function globalSetup(): Promise<void> {
  loadStackEnv();
  const missing = ['DATABASE_URL', 'TEMPORAL_ADDRESS', 'KUBECONFIG'].filter((k) => !process.env[k]);
  if (missing.length) {
    throw new Error(`the local stack is not configured (${missing.join(', ')} unset): run \`npm run stack:up\` first`);
  }
  const base = new URL(process.env.DATABASE_URL!);
  const probe = new Client({ connectionString: base.toString().replace(/\/[^/]*$/, '/postgres'), connectionTimeoutMillis: 5_000 });
  await probe.connect().catch((err: Error) => {
    throw new Error(`PostgreSQL at ${base.host} does not answer (${err.message}): run \`npm run stack:up\``);
  });
  await probe.end();

  // One throw-away database per run: tests never see a previous run's rows.
  base.pathname = `/tenants_test_${Date.now().toString(36)}_${process.pid}`;
  process.env.DATABASE_URL = base.toString();
  process.env.TEST_DATABASE_URL = base.toString();
  await ensureDatabase(base.toString());
  await migrate(base.toString());
}
