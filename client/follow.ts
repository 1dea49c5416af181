/**
 * Shows a running deploy's progress from its `progress` query and dbt's heartbeats. On a terminal it
 * is one bar redrawn in place; otherwise (CI logs, a pipe) one plain line each time a step starts or
 * ends, so logs stay readable.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { formatDiffSummary } from '../workflows/diff.js';
import { deployProgress, type LiveProgress } from './deploys.js';

export interface FollowOutput {
  /** A finished line. */
  print(line: string): void;
  /** Redraws the bar in place; only given on a terminal. */
  redraw?: (line: string) => void;
}

export function followDeploy(handle: WorkflowHandle, output: FollowOutput, everyMs = 1_000): () => void {
  let stopped = false;
  const seen = new Map<string, string>();
  const poll = async () => {
    while (!stopped) {
      try {
        const progress = await deployProgress(handle);
        // The result may have been printed while the query was on its way.
        if (stopped) return;
        if (progress.approval && !seen.has('approval')) {
          seen.set('approval', 'waiting');
          output.print(
            `${seconds(progress)} waiting for approval until ${progress.approval.deadline} (then: ${progress.approval.onTimeout}): dbt-deploy approve|abort --env <env>`,
          );
        }
        for (const [index, step] of progress.steps.entries()) {
          if (step.status === 'pending' || seen.get(step.id) === step.status) continue;
          seen.set(step.id, step.status);
          output.print(
            `${seconds(progress)} [${index + 1}/${progress.steps.length}] ${step.status}: ${step.title}`,
          );
        }
        // Once computed, the diff is printed in full: at the gate it is what the approver says yes to.
        // Its own key: `seen` also holds step ids, and the diff step's id is `diff`.
        if (progress.diff && !seen.has(':diff')) {
          seen.set(':diff', 'shown');
          const [first, ...rest] = formatDiffSummary(progress.diff);
          output.print(`${seconds(progress)} ${first}`);
          for (const line of rest) output.print(`      ${line}`);
          // The gate is entered in the same workflow task that records the diff: both show at once.
          if (progress.approval)
            output.print('      with sample rows of each change: dbt-deploy diff --env <env>');
        }
        output.redraw?.(progressBar(progress));
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

/** Writes finished lines above a bar that is redrawn in place on stdout. */
export function terminalOutput(stream: NodeJS.WriteStream = process.stdout): FollowOutput {
  if (!stream.isTTY) return { print: (line) => stream.write(`${line}\n`) };
  let bar = '';
  const clear = () => stream.write('\r\u001b[2K');
  return {
    print: (line) => {
      clear();
      stream.write(`${line}\n${bar}`);
    },
    redraw: (line) => {
      bar = line.slice(0, Math.max(20, (stream.columns ?? 100) - 1));
      clear();
      stream.write(bar);
    },
  };
}

/** `[#####·····] 3/7 building: dbt 12/40 (1 failing) 42s` */
export function progressBar(progress: LiveProgress, width = 20): string {
  const done = progress.steps.filter((s) => s.status !== 'pending' && s.status !== 'running').length;
  const running = progress.dbt && progress.dbt.total > 0 ? progress.dbt.done / progress.dbt.total : 0;
  const fraction = Math.min(1, (done + running) / Math.max(1, progress.steps.length));
  const filled = Math.round(fraction * width);
  const dbt = progress.dbt
    ? `: dbt ${progress.dbt.done}/${progress.dbt.total}${progress.dbt.failed ? ` (${progress.dbt.failed} failing)` : ''}`
    : '';
  const step = progress.step ? `${progress.step.index}/${progress.step.of} ` : '';
  const waiting = progress.approval ? ` until ${progress.approval.deadline}` : '';
  return `[${'#'.repeat(filled)}${'·'.repeat(width - filled)}] ${step}${progress.phase}${dbt}${waiting} ${seconds(progress)}`;
}

function seconds(progress: LiveProgress): string {
  return `${(progress.elapsedMs / 1000).toFixed(0).padStart(4)}s`;
}
