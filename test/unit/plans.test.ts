/** Every strategy's plan on every engine: pure functions, checked without touching a warehouse. */
import { describe, expect, it } from 'vitest';
import {
  CAPABILITIES,
  type Capabilities,
  ENGINES,
  readersSee,
} from '../../activities/warehouses/capabilities.js';
import { describePlan, type Plan } from '../../workflows/plan.js';
import { planDeploy, StrategyNotSupported, supportedStrategies } from '../../workflows/strategies/index.js';
import { planRollback } from '../../workflows/strategies/rollback.js';
import { STRATEGIES } from '../../workflows/types.js';
import { deployInput } from './deploy-input.js';

// With a mirror and an audit target, so every plan shows the steps they add.
const base = deployInput({
  strategy: 'auto',
  targets: { prod: 'prod', staging: 'staging', audit: 'audit' },
  mirror: { select: ['tag:raw'] },
});

const index = (plan: Plan, activity: string, from = 0) =>
  plan.steps.findIndex((s, i) => i >= from && s.activity === activity);

describe.each(ENGINES)('plans on %s', (engine) => {
  const works = supportedStrategies(CAPABILITIES[engine]);
  const blueGreen = works.includes('blue-green');
  // BigQuery refuses blue-green (test/unit/bigquery-plans.test.ts): its cases are registered only where it runs.
  const deployable = STRATEGIES.filter((s) => s !== 'mirror' && (s === 'auto' || works.includes(s)));

  it.each(deployable)(
    '%s: nothing reaches prod before a passing audit, and every change has an undo',
    (strategy) => {
      const plan = planDeploy({ ...base, engine, strategy });
      const audit = index(plan, 'audit');
      const firstChange = plan.steps.findIndex((s) => s.touches === 'prod' || s.touches === 'backup');
      expect(audit).toBeGreaterThanOrEqual(0);
      expect(audit).toBeLessThan(firstChange);
      for (const step of plan.steps.filter((s) => s.touches === 'prod' || s.touches === 'backup'))
        expect(step.compensation, `${strategy}/${step.id}`).toBeDefined();
      expect(new Set(plan.steps.map((s) => s.id)).size).toBe(plan.steps.length);
      // With a mirror configured, no deploy builds the raw layer from live sources.
      for (const build of plan.steps.filter((s) => s.activity === 'dbtBuild' && s.touches === 'staging'))
        expect(build.args).toMatchObject({ exclude: ['tag:raw'] });
    },
  );

  if (blueGreen)
    it('blue-green brings staging up to prod before building (no T+1 data loss), then cuts over once', () => {
      const plan = planDeploy({ ...base, engine, strategy: 'blue-green' });
      expect(index(plan, 'syncFromProd')).toBeLessThan(index(plan, 'dbtBuild'));
      expect(plan.steps.find((s) => s.activity === 'syncFromProd')?.args).toEqual({ buildTarget: 'staging' });
      const prodSteps = plan.steps.filter((s) => s.touches === 'prod');
      expect(prodSteps).toHaveLength(1);
      if (CAPABILITIES[engine].atomicSwap !== 'none') {
        expect(prodSteps[0]).toMatchObject({
          activity: 'swapSchemas',
          compensation: { activity: 'unswapSchemas' },
        });
        expect(index(plan, 'backupProd')).toBe(-1);
      } else {
        expect(prodSteps[0]).toMatchObject({
          activity: 'publishRelations',
          compensation: { activity: 'restoreProd' },
        });
        expect(index(plan, 'backupProd')).toBeLessThan(index(plan, 'publishRelations'));
      }
      expect(plan.steps.at(-1)?.activity).toBe('verifyProd');
    });

  it('clone-back copies prod into staging and rebuilds only the selection and the views it reads', () => {
    const plan = planDeploy({ ...base, engine, strategy: 'clone-back' });
    expect(plan.steps.map((s) => s.activity)).toEqual([
      'resolveRelations',
      'syncFromProd',
      'dbtBuild',
      'audit',
      'selectPublishSet',
      'diffProd',
      'backupProd',
      'publishRelations',
      'verifyProd',
    ]);
    expect(plan.steps[2]?.args).toEqual({
      target: 'staging',
      select: [
        'state:modified+',
        '+state:modified+,config.materialized:view',
        'tag:mart',
        '+tag:mart,config.materialized:view',
        'tag:utils',
        '+tag:utils,config.materialized:view',
      ],
      stateAware: true,
      exclude: ['tag:raw'],
    });
    const custom = planDeploy({ ...base, engine, strategy: 'clone-back', select: ['fct_orders+'] });
    expect(custom.steps[2]?.args).toMatchObject({
      select: ['fct_orders+', '+fct_orders+,config.materialized:view'],
    });
  });

  it('wap builds in the audit target and rebuilds only the selected models in prod, with a restore as undo', () => {
    const plan = planDeploy({ ...base, engine, strategy: 'wap' });
    expect(plan.steps.find((s) => s.id === 'build')?.args).toMatchObject({ target: 'audit' });
    const publish = plan.steps.find((s) => s.id === 'publish');
    expect(publish).toMatchObject({
      activity: 'dbtBuild',
      touches: 'prod',
      args: { target: 'prod', selectPublishSet: true, deferToStep: 'build' },
      compensation: { activity: 'restoreProd' },
    });
    expect(plan.steps.at(-1)).toMatchObject({
      activity: 'audit',
      args: { buildStepId: 'publish', verifiesPublish: true },
    });
    const noAudit = planDeploy({
      ...base,
      engine,
      strategy: 'wap',
      targets: { prod: 'prod', staging: 'staging' },
    });
    expect(noAudit.steps.find((s) => s.id === 'build')?.args).toMatchObject({ target: 'staging' });
  });

  it('mirror refreshes only the raw layer, from the live sources, and keeps the last copy as a backup', () => {
    const plan = planDeploy({ ...base, engine, strategy: 'mirror' });
    expect(plan.steps.find((s) => s.id === 'build')?.args).toEqual({
      target: 'staging',
      select: ['tag:raw'],
    });
    expect(plan.steps.find((s) => s.id === 'backup')?.args).toEqual({
      prodTarget: 'prod',
      operation: 'mirror',
    });
    expect(index(plan, 'audit')).toBeLessThan(index(plan, 'backupProd'));
  });

  it('declares how it cuts over, publishes and backs up, and what readers see meanwhile', () => {
    const { cutOver, publish, backup } = CAPABILITIES[engine];
    // A swap is never promised as one transaction by an engine that has none, and vice versa.
    if (cutOver.atomicity === 'one-transaction') expect(CAPABILITIES[engine].transactionalDdl).toBe(true);
    expect(cutOver.kind === 'schema-swap' || cutOver.kind === 'database-swap').toBe(
      CAPABILITIES[engine].atomicSwap !== 'none',
    );
    expect(backup.kind).toBe(CAPABILITIES[engine].zeroCopyClone ? 'zero-copy-clone' : 'copy');
    for (const strategy of ['blue-green', 'clone-back', 'wap', 'wac', 'mirror', 'rollback'] as const)
      expect(readersSee(strategy, CAPABILITIES[engine]).length).toBeGreaterThan(20);
    expect(readersSee('blue-green', CAPABILITIES[engine])).toBe(cutOver.readersSee);
    expect(readersSee('clone-back', CAPABILITIES[engine])).toBe(publish.readersSee);
  });

  if (blueGreen)
    it('auto picks blue-green here and says why', () => {
      const plan = planDeploy({ ...base, engine, strategy: 'auto' });
      expect(plan.strategy).toBe('blue-green');
      expect(plan.rationale).toMatch(/^auto chose blue-green \(this warehouse .*\): build on/);
      expect(describePlan(plan).length).toBe(plan.steps.length);
    });
});

describe('strategies an engine cannot run', () => {
  const cloneOnly: Capabilities = {
    zeroCopyClone: true,
    atomicSwap: 'none',
    transactionalDdl: false,
    cloneViews: false,
    timeTravelDays: 7,
    singleWriter: false,
    cutOver: { kind: 'per-relation', atomicity: 'per-relation', readersSee: 'each table as it is cloned' },
    publish: { kind: 'per-relation', atomicity: 'per-relation', readersSee: 'each table as it is cloned' },
    backup: { kind: 'zero-copy-clone', restore: 'per-relation' },
    stagingScope: 'account',
    cloneDatabases: false,
  };

  it('are refused before anything runs, naming those that work', () => {
    expect(() => planDeploy({ ...base, strategy: 'blue-green' }, cloneOnly)).toThrow(StrategyNotSupported);
    expect(() => planDeploy({ ...base, strategy: 'blue-green' }, cloneOnly)).toThrow(
      /strategies that work: clone-back, wap, wac, mirror/,
    );
    expect(supportedStrategies(CAPABILITIES.duckdb)).toEqual([
      'blue-green',
      'clone-back',
      'wap',
      'wac',
      'mirror',
    ]);
  });

  it('make auto fall back to the safest that works', () => {
    expect(planDeploy({ ...base, strategy: 'auto' }, cloneOnly).strategy).toBe('wac');
    expect(planDeploy({ ...base, strategy: 'auto' }, { ...cloneOnly, zeroCopyClone: false }).strategy).toBe(
      'wap',
    );
  });
});

describe('the rollback plan', () => {
  it('backs up the current prod before restoring, so the rollback itself can be undone', () => {
    const plan = planRollback({ ...base, rollbackTo: 'prod-0' });
    expect(plan.steps.map((s) => [s.activity, s.compensation?.activity])).toEqual([
      ['findBackup', undefined],
      ['backupProd', 'dropBackup'],
      ['restoreBackup', 'restoreProd'],
      ['verifyRestore', undefined],
    ]);
    expect(plan.rationale).toContain('deploy prod-0');
    expect(plan.steps[1]?.args).toEqual({ prodTarget: 'prod', operation: 'rollback' });
  });
});
