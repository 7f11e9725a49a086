/**
 * The workflow bundle the image builds (src/workflow-bundle.ts) is the same workflow code: every
 * recorded history replays against it, as the worker would run it with WORKFLOW_BUNDLE set.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { writeWorkflowBundle } from '../../src/workflow-bundle';

const HISTORIES = path.resolve(__dirname, '../histories');

describe('workflow bundle built ahead of time', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bundle-'));
  const codePath = path.join(dir, 'workflow-bundle.js');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('replays every recorded history', async () => {
    expect(await writeWorkflowBundle(codePath)).toBeGreaterThan(10_000);
    const files = readdirSync(HISTORIES).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const history: unknown = JSON.parse(readFileSync(path.join(HISTORIES, file), 'utf8'));
      await expect(Worker.runReplayHistory({ workflowBundle: { codePath } }, history, file)).resolves.toBeUndefined();
    }
  });
});
