/**
 * Rows of the fault matrix. Fault tests record what they saw; with RELIABILITY_OUT set (see
 * `npm run reliability`) the rows are merged into that JSON file, from which docs/reliability.md
 * is rendered.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export interface FaultRow {
  fault: string;
  tenants: number;
  /** Reached the state the scenario drives toward (active, suspended, deprovisioned, …). */
  completed: number;
  /** Never got there, or their workflow failed. */
  lost: number;
  /** Tenants with more than one workflow execution or more than one namespace. */
  duplicated: number;
  /** Tenants with objects or rows left behind once everything was torn down. */
  leftOver: number;
  /** How long the scenario took, seconds. */
  seconds: number;
  note?: string;
}

export function recordFaultRow(row: FaultRow): void {
  const out = process.env.RELIABILITY_OUT;
  if (!out) return;
  const rows = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as FaultRow[]) : [];
  const merged = [...rows.filter((r) => r.fault !== row.fault), row];
  writeFileSync(out, `${JSON.stringify(merged, null, 2)}\n`);
}
