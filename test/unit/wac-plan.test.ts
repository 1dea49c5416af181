import { describe, expect, it } from 'vitest';
import { describePlan } from '../../workflows/plan.js';
import { planDeploy } from '../../workflows/strategies/index.js';
import { deployInput } from './deploy-input.js';

const input = deployInput();

describe('the wac plan', () => {
  const plan = planDeploy(input);

  it('builds and audits in staging before anything reaches prod', () => {
    expect(plan.steps.map((s) => s.activity)).toEqual([
      'dbtBuild',
      'audit',
      'resolvePublishSet',
      'diffProd',
      'backupProd',
      'publishTables',
      'publishViews',
      'verifyProd',
    ]);
    const firstProdStep = plan.steps.findIndex((s) => s.touches === 'prod');
    const audit = plan.steps.findIndex((s) => s.activity === 'audit');
    const backup = plan.steps.findIndex((s) => s.activity === 'backupProd');
    expect(audit).toBeLessThan(backup);
    expect(backup).toBeLessThan(firstProdStep);
    expect(plan.steps[0]).toMatchObject({
      activity: 'dbtBuild',
      args: { target: 'staging' },
      touches: 'staging',
    });
  });

  it('gives every step that changes prod or keeps a backup a compensation', () => {
    for (const step of plan.steps.filter((s) => s.touches === 'prod' || s.touches === 'backup')) {
      expect(step.compensation, step.id).toBeDefined();
    }
    expect(plan.steps.filter((s) => s.touches === 'prod').map((s) => s.compensation?.activity)).toEqual([
      'restoreProd',
      'restoreProd',
    ]);
    expect(plan.steps.find((s) => s.id === 'backup')?.compensation?.activity).toBe('dropBackup');
  });

  it('gives steps unique ids and says how DuckDB publishes', () => {
    expect(new Set(plan.steps.map((s) => s.id)).size).toBe(plan.steps.length);
    const lines = describePlan(plan);
    expect(lines[5]).toContain('Copy the selected tables from "staging" to "prod" in one transaction');
    expect(plan.rationale).toContain('mart, utils');
  });

  it('names the configured targets and tags', () => {
    const custom = planDeploy({ ...input, targets: { prod: 'live', staging: 'green' }, publishTags: ['bi'] });
    expect(custom.steps[0]?.title).toContain('"green"');
    expect(custom.steps.find((s) => s.activity === 'publishTables')?.args).toEqual({ prodTarget: 'live' });
    expect(custom.rationale).toContain('tagged bi');
  });

  it('checks the publish selection with the build it precedes, so the build and the selection need no dbt of their own', () => {
    const selecting = planDeploy({ ...input, publish: { tags: ['mart'] } });
    const build = selecting.steps.find((s) => s.activity === 'dbtBuild');
    expect(selecting.steps[0]).toMatchObject({
      id: 'check-publish',
      args: { prodTarget: 'prod', build: build?.args },
    });
    expect(selecting.steps[0]?.title).toContain('compile them for "prod"');
    // With a raw layer, the resolve step maps every relation before the build: the check only lists.
    const mirrored = planDeploy({ ...input, publish: { tags: ['mart'] }, mirror: { select: ['tag:raw'] } });
    expect(mirrored.steps[0]?.args).toEqual({ prodTarget: 'prod' });
  });
});
