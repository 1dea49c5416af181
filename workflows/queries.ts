/**
 * How clients talk to a running deploy: the `progress` query, and the `approve` and `abort` updates.
 * Updates (not signals) so the caller learns at once whether it was accepted: approving a deploy that
 * is not waiting is rejected by the validator with a message saying why.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { DiffSummary } from './diff.js';
import type { PlanKind, StepRecord } from './types.js';

/** Where a deploy is, in the words the UI's `DbtDeployPhase` search attribute uses. */
export type DeployPhase =
  | 'preparing'
  | 'building'
  | 'auditing'
  | 'awaiting-approval'
  | 'backing-up'
  | 'publishing'
  | 'verifying'
  | 'compensating'
  | 'done';

export interface DeployProgress {
  strategy: PlanKind;
  phase: DeployPhase;
  /** The step running now (or the last one that ran), 1-based. */
  step: { index: number; of: number; id: string; title: string; status: StepRecord['status'] } | null;
  steps: StepRecord[];
  startedAt: string;
  elapsedMs: number;
  /** The diff of prod against the candidate, once the diff step ran (what the approver reads). */
  diff?: DiffSummary | null;
  /** Set while the deploy waits at the approval gate: until when, and what a timeout does. */
  approval?: { waitingSince: string; deadline: string; onTimeout: 'abort' | 'approve' } | null;
}

/** Who decided at the approval gate (or aborted), when, and why; kept in the result and the history. */
export interface Decision {
  kind: 'approved' | 'aborted';
  by: string;
  at: string;
  note?: string;
}

export interface DecisionRequest {
  /** Who asks; the CLI sends `user@host`. */
  by: string;
  note?: string;
}

export const progressQuery = defineQuery<DeployProgress>('progress');
export const approveUpdate = defineUpdate<Decision, [DecisionRequest]>('approve');
export const abortUpdate = defineUpdate<Decision, [DecisionRequest]>('abort');
