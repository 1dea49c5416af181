import { defineQuery } from '@temporalio/workflow';
import type { PlanKind, StepRecord } from './types.js';

export interface DeployProgress {
  strategy: PlanKind;
  /** The step running now (or the last one that ran), 1-based. */
  step: { index: number; of: number; id: string; title: string; status: StepRecord['status'] } | null;
  steps: StepRecord[];
  startedAt: string;
  elapsedMs: number;
}

export const progressQuery = defineQuery<DeployProgress>('progress');
