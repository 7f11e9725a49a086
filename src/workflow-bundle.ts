/**
 * Bundles the workflow code once, at build time (the Dockerfile runs it), so a worker starts
 * without webpack: the worker loads the file named by WORKFLOW_BUNDLE instead of bundling
 * src/workflows at every start (seconds of CPU, and webpack in the production image).
 *
 *   node dist/workflow-bundle.js dist/workflow-bundle.js
 */
import { writeFile } from 'node:fs/promises';
import { bundleWorkflowCode } from '@temporalio/worker';

export async function writeWorkflowBundle(outFile: string): Promise<number> {
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('./workflows') });
  await writeFile(outFile, code);
  return code.length;
}

if (require.main === module) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: node dist/workflow-bundle.js <output file>');
    process.exit(2);
  }
  writeWorkflowBundle(out).then(
    (bytes) => console.log(`workflow bundle written to ${out} (${bytes} bytes)`),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
