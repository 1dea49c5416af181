/**
 * Where the diff step sits in each plan: after the audit and the choice of what to publish, before
 * anything touches prod or a backup (so before the approval gate), in every strategy; never in a
 * rollback; and not in the plan workflow code makes for histories recorded before plans were fixed at
 * the start, which must replay with the plan they were recorded with.
 */
import { describe, expect, it } from 'vitest';
import { approvalGateIndex, describePlan } from '../../workflows/plan.js';
import { planDeploy, planOperation } from '../../workflows/strategies/index.js';
import { ENGINES } from '../../activities/warehouses/capabilities.js';
import { supportedStrategies } from '../../workflows/strategies/index.js';
import { CAPABILITIES } from '../../activities/warehouses/capabilities.js';
import { deployInput } from './deploy-input.js';

const input = deployInput({
  targets: { prod: 'prod', staging: 'staging', audit: 'audit' },
  mirror: { select: ['tag:raw'] },
});

describe('the diff step', () => {
  describe.each(ENGINES)('on %s', (engine) => {
    it.each(supportedStrategies(CAPABILITIES[engine]))(
      '%s diffs after choosing what to publish and before the first step that touches prod or a backup',
      (strategy) => {
        const plan = planDeploy({ ...input, engine, strategy });
        const ids = plan.steps.map((s) => s.id);
        const diff = ids.indexOf('diff');
        expect(diff).toBe(ids.indexOf('select') + 1);
        expect(diff).toBeGreaterThan(ids.indexOf('audit'));
        expect(plan.steps[diff]).toMatchObject({
          activity: 'diffProd',
          touches: 'nothing',
          args: { buildStepId: 'build', prodTarget: 'prod' },
          attempts: 3,
        });
        const firstChange = plan.steps.findIndex((s) => s.touches === 'prod' || s.touches === 'backup');
        expect(diff).toBeLessThan(firstChange);
        // The gate waits right after it: the approver has the diff when asked.
        const gated = { approval: { required: true, timeout: '1h', onTimeout: 'abort' as const } };
        expect(approvalGateIndex(plan, gated)).toBe(diff + 1);
      },
    );
  });

  it('says how many audit rules it checks', () => {
    const plain = planDeploy(input).steps.find((s) => s.id === 'diff')!;
    expect(plain.title).toBe(
      'Diff every relation to publish against "prod" (rows added, removed and changed by key, columns)',
    );
    const audits = [
      { kind: 'min_rows' as const, rows: 1, name: 'min_rows 1', severity: 'error' as const },
      { kind: 'no_lost_keys' as const, name: 'no_lost_keys', severity: 'warn' as const },
    ];
    expect(planDeploy({ ...input, audits }).steps.find((s) => s.id === 'diff')?.title).toMatch(
      /and check 2 audit rules$/,
    );
    expect(describePlan(planDeploy(input)).some((line) => line.includes('Diff every relation'))).toBe(true);
  });

  it('is part of deploys and mirror refreshes, not of rollbacks', () => {
    expect(planOperation(input, 'deploy').steps.map((s) => s.id)).toContain('diff');
    expect(planOperation(input, 'mirror-refresh').steps.map((s) => s.id)).toContain('diff');
    expect(planOperation(input, 'rollback').steps.map((s) => s.id)).not.toContain('diff');
  });

  it('is left out of the plan made for histories from before plans were fixed at the start', () => {
    for (const strategy of ['blue-green', 'clone-back', 'wap', 'wac'] as const) {
      const today = planOperation({ ...input, strategy }, 'deploy');
      const before = planOperation({ ...input, strategy }, 'deploy', { diff: false });
      expect(before.steps).toEqual(today.steps.filter((s) => s.id !== 'diff'));
    }
  });
});
