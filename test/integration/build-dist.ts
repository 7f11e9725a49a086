/**
 * Builds dist/ (tsc) for tests that run the built JavaScript as operators and the image do. Test
 * files run in parallel workers: a lock directory keeps two builds from writing dist/ at once.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './helpers';

const execFileP = promisify(execFile);
const LOCK = path.join(os.tmpdir(), `tenant-provisioner-build-${createHash('sha1').update(ROOT).digest('hex').slice(0, 12)}.lock`);
const STALE_MS = 5 * 60_000;

export async function buildDist(): Promise<void> {
  const deadline = Date.now() + 2 * STALE_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      // Held by another test file's build; a lock left by a killed run goes stale.
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > STALE_MS) rmSync(LOCK, { recursive: true, force: true });
      } catch {
        // released meanwhile
      }
      if (Date.now() > deadline) throw new Error(`could not take the build lock ${LOCK}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    await execFileP('npx', ['--no-install', 'tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT });
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/**
 * Where tests keep the prebuilt workflow bundle. Not dist/workflow-bundle.js: that is the script
 * that writes it (the image overwrites it with its output, a test must not, or the next build
 * would find a bundle where it runs the script).
 */
export const WORKFLOW_BUNDLE = path.join(ROOT, 'dist', 'workflows.bundle.js');

/** Bundles the workflow code from dist/ into WORKFLOW_BUNDLE, replacing it in one rename. */
export async function buildWorkflowBundle(): Promise<void> {
  const tmp = `${WORKFLOW_BUNDLE}.${process.pid}.tmp`;
  await execFileP(process.execPath, [path.join(ROOT, 'dist', 'workflow-bundle.js'), tmp], { cwd: ROOT });
  renameSync(tmp, WORKFLOW_BUNDLE);
}
