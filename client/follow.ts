/**
 * Prints a running deploy's progress from its `progress` query: one line each time a step starts or
 * ends. Plain lines, so it reads the same on a terminal, in CI logs and piped to a file.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { deployProgress } from './deploys.js';

export function followDeploy(
  handle: WorkflowHandle,
  print: (line: string) => void,
  everyMs = 1_000,
): () => void {
  let stopped = false;
  const seen = new Map<string, string>();
  const poll = async () => {
    while (!stopped) {
      try {
        const progress = await deployProgress(handle);
        for (const [index, step] of progress.steps.entries()) {
          if (step.status === 'pending' || seen.get(step.id) === step.status) continue;
          seen.set(step.id, step.status);
          const elapsed = (progress.elapsedMs / 1000).toFixed(0).padStart(4);
          print(`${elapsed}s [${index + 1}/${progress.steps.length}] ${step.status}: ${step.title}`);
        }
      } catch {
        // The query fails while the first workflow task is still pending, and after the deploy ended.
      }
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  };
  void poll();
  return () => {
    stopped = true;
  };
}
