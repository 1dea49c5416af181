/**
 * The steps that change prod: back it up, publish (copy, dbt, or swap), verify it, and write the
 * deploy's report.
 */

import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type {
  BackupOperation,
  DeployInput,
  DeployResult,
  Fingerprint,
  Relation,
} from '../../workflows/types.js';
import {
  artifactRef,
  readArtifact,
  type RunResults,
  summarizeRunResults,
  writeArtifact,
} from '../artifacts.js';
import { backupHandle } from '../../workflows/state.js';
import { writeDeployReport } from '../report.js';
import { type RelationMap, schemaPairs } from '../relation-map.js';
import { kindsOf, relationName } from '../warehouses/adapter.js';
import {
  dbt,
  expectedFingerprints,
  keepProdStateBefore,
  listed,
  publishedState,
  pruneBackups,
  recordProdState,
  relationsOf,
  requireOneWarehouse,
  requirePublishSet,
  requireRelations,
  requireBackupIn,
  type StepOutcome,
  type StepPaths,
  type StepRequest,
  warehouse,
} from '../step-context.js';

export function publishSteps(paths: StepPaths) {
  const { artifactsDirOf, prodStateDirOf, parseCacheOf } = paths;
  return {
    async backupProd({
      input,
      state,
      args,
    }: StepRequest<{ prodTarget: string; operation?: BackupOperation }>): Promise<StepOutcome> {
      const restoreFrom = state.restoreFrom;
      const publishSet = restoreFrom ? undefined : await requirePublishSet(state);
      const label = {
        env: input.env,
        operation: args.operation ?? 'deploy',
        createdAt: new Date().toISOString(),
      };
      await keepProdStateBefore(paths, input);
      return warehouse(input, args.prodTarget, async (w) => {
        // A rollback backs up what the earlier backup will replace: its entries, read from its manifest.
        const relations = restoreFrom
          ? (await requireBackupIn(w, restoreFrom)).entries.map((e) => e.prod)
          : relationsOf(publishSet!);
        const backup = await w.backup(input.deployId, relations, label);
        const kept = backup.entries.filter((e) => e.kind !== 'absent').length;
        return {
          summary: `kept ${kept} of ${relations.length} relations in ${backup.location.schema}`,
          state: { backup: backupHandle(backup) },
        };
      });
    },

    async publishTables({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const { tables } = await requirePublishSet(state);
      requireOneWarehouse(input);
      await warehouse(input, args.prodTarget, (w) =>
        w.replaceRelations({
          tables: tables.map((t) => ({ from: t.staging, to: t.prod })),
          views: [],
          drop: [],
        }),
      );
      return { summary: `published ${tables.length} tables: ${listed(tables.map((t) => t.name))}` };
    },

    async publishViews({
      input,
      state,
      stepId,
      args,
    }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const { views } = await requirePublishSet(state);
      if (views.length === 0) return { summary: 'no views to re-create' };
      const names = views.map((v) => v.name);
      // The select step compiled every view for prod: the adapter re-creates them without starting dbt.
      const compiled = state.relations ? await readArtifact<RelationMap>(state.relations) : undefined;
      const sqlOf = new Map(compiled?.models.map((m) => [m.uniqueId, m.prodSql]));
      const fromSql = views.map((view) => ({ to: view.prod, sql: sqlOf.get(view.uniqueId) }));
      if (fromSql.every((view): view is { to: Relation; sql: string } => view.sql !== undefined)) {
        await warehouse(input, args.prodTarget, (w) =>
          w.replaceRelations({ tables: [], views: fromSql, drop: [] }),
        );
        return { summary: `re-created ${views.length} views: ${names.join(', ')}` };
      }
      // A deploy whose select step ran before views were compiled there: dbt re-creates them.
      const dir = join(artifactsDirOf(input), stepId);
      await dbt(
        parseCacheOf(input),
        input,
        args.prodTarget,
        ['run', '--target', args.prodTarget, '--select', ...names],
        dir,
      );
      const results = summarizeRunResults(
        await readArtifact<RunResults>(await artifactRef(join(dir, 'run_results.json'))),
      );
      if (!results.passed) {
        const failed = listed(
          results.blocking.map((n) => `${n.name}: ${n.message ?? n.status}`),
          25,
          '; ',
        );
        throw ApplicationFailure.nonRetryable(`re-creating views in prod failed: ${failed}`, 'PublishFailed');
      }
      return { summary: `re-created ${views.length} views: ${listed(names)}` };
    },

    async publishRelations({
      input,
      state,
      args,
    }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const publishSet = await requirePublishSet(state);
      const map = await readArtifact<RelationMap>(requireRelations(state));
      requireOneWarehouse(input);
      const sqlOf = new Map(map.models.map((m) => [m.uniqueId, m.prodSql]));
      const views = publishSet.views.map((view) => {
        const sql = sqlOf.get(view.uniqueId);
        if (!sql) throw ApplicationFailure.nonRetryable(`no compiled SQL for view ${view.name}`, 'PlanError');
        return { to: view.prod, sql };
      });
      await warehouse(input, args.prodTarget, (w) =>
        w.replaceRelations({
          tables: publishSet.tables.map((t) => ({ from: t.staging, to: t.prod })),
          views,
          drop: publishSet.drop ?? [],
        }),
      );
      const dropped = publishSet.drop?.length ? `, dropped ${publishSet.drop.length}` : '';
      return {
        summary: `published ${publishSet.tables.length} tables and ${views.length} views${dropped}`,
      };
    },

    async swapSchemas({
      input,
      state,
      stepId,
      args,
    }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const publishSet = await requirePublishSet(state);
      const map = await readArtifact<RelationMap>(requireRelations(state));
      requireOneWarehouse(input);
      const swaps = schemaPairs(map).map((p) => ({ prod: p.prod, staging: p.build }));
      const label = { env: input.env, operation: 'deploy' as const, createdAt: new Date().toISOString() };
      await keepProdStateBefore(paths, input);
      return warehouse(input, args.prodTarget, async (w) => {
        // Staging disappears into prod with the swap: what it held is recorded first, to verify against.
        const expected: Fingerprint[] = [];
        for (const model of [...publishSet.tables, ...publishSet.views]) {
          const found = await w.fingerprint(model.staging);
          expected.push({ ...found, relation: model.prod });
        }
        // Views keep the SQL dbt compiled for prod, so after the swap they read the new prod.
        const sqlOf = new Map(map.models.map((m) => [m.uniqueId, m.prodSql]));
        const views = publishSet.views.flatMap((view) => {
          const sql = sqlOf.get(view.uniqueId);
          return sql ? [{ to: view.staging, sql }] : [];
        });
        // Before the swap: its retry after a commit finds staging gone, but the file already written.
        const expectedRef = await writeArtifact(
          join(artifactsDirOf(input), stepId, 'expected.json'),
          expected,
        );
        const backup = await w.swapLocations(input.deployId, swaps, label, views);
        const names = swaps.map((s) => `${s.staging.schema} → ${s.prod.schema}`).join(', ');
        return {
          summary: `swapped ${names}; old prod kept as ${backup.location.schema}`,
          state: { backup: backupHandle(backup), expectedRef },
        };
      });
    },

    async verifyProd({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const publishSet = await requirePublishSet(state);
      const models = [...publishSet.tables, ...publishSet.views];
      const before = new Map(
        ((await expectedFingerprints(state)) ?? []).map((f) => [relationName(f.relation), f]),
      );
      const { mismatches, pruned } = await warehouse(input, args.prodTarget, async (w) => {
        const found: string[] = [];
        for (const model of models) {
          Context.current().heartbeat({ verifying: model.name });
          const prod = await w.fingerprint(model.prod);
          const expected = before.get(relationName(model.prod)) ?? (await w.fingerprint(model.staging));
          if (prod.rows !== expected.rows || prod.checksum !== expected.checksum) {
            found.push(
              `${model.name}: prod ${prod.rows} rows/${prod.checksum}, staging ${expected.rows} rows/${expected.checksum}`,
            );
          }
        }
        const kindOf = await kindsOf(w, publishSet.drop ?? []);
        for (const relation of publishSet.drop ?? [])
          if (kindOf(relation) !== 'absent') found.push(`${relationName(relation)} was not dropped`);
        // Retention only after a verified publish, in the same session with the warehouse.
        return { mismatches: found, pruned: found.length ? '' : await pruneBackups(w, input) };
      });
      if (mismatches.length > 0) {
        const blocked = `verify failed, prod differs from staging: ${listed(mismatches, 25, '; ')}`;
        return { summary: blocked, blocked };
      }
      // A mirror refresh built only the raw layer: its manifest is no state to compare deploys with.
      if (input.strategy !== 'mirror') await recordProdState(state, prodStateDirOf(input));
      return {
        summary: `${models.length} relations match staging (rows and checksum)${pruned}`,
        state: publishedState(models.map((m) => relationName(m.prod))),
      };
    },

    async writeReport({
      input,
      result,
    }: {
      input: DeployInput;
      result: DeployResult;
    }): Promise<{ report: string }> {
      return { report: await writeDeployReport(artifactsDirOf(input), input, result) };
    },
  };
}
