/**
 * The step between the audit and the cut-over: diff every relation the deploy will publish against its
 * prod version, run deploy.yml's audit rules on that diff (and their SQL assertions in the warehouse),
 * and block the publish when an `error` rule fails, exactly as a failing dbt test does. The diff is
 * written to `diff/diff.json` in the deploy's artifact folder; the workflow carries only its summary
 * and that file's reference, so a large project's diff never lands in Temporal history.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import {
  DEFAULT_DIFF_SETTINGS,
  type ProdDiff,
  type RelationDiff,
  summarizeDiff,
} from '../../workflows/diff.js';
import { artifactRef, type Manifest, readArtifact } from '../artifacts.js';
import { blockedBy, evaluateRules } from '../audit-rules.js';
import { auditTargets, diffRelation, diffStatementsFor, diffTargets } from '../diff.js';
import {
  requirePublishSet,
  type StepOutcome,
  type StepPaths,
  type StepRequest,
  warehouse,
} from '../step-context.js';

export interface DiffArgs {
  /** The build whose manifest names each model's key, tags and tests. */
  buildStepId: string;
  prodTarget: string;
}

export function diffSteps(paths: StepPaths) {
  const { artifactsDirOf } = paths;
  return {
    async diffProd({ input, state, stepId, args }: StepRequest<DiffArgs>): Promise<StepOutcome> {
      const publishSet = await requirePublishSet(state);
      const manifestRef = state.artifacts?.[args.buildStepId]?.manifest;
      const manifest = manifestRef ? await readArtifact<Manifest>(manifestRef) : undefined;
      const targets = diffTargets(publishSet, manifest);
      const settings = { ...DEFAULT_DIFF_SETTINGS, ...input.diff };
      const rules = input.audits ?? [];
      const diff = await warehouse(input, args.prodTarget, async (w): Promise<ProdDiff> => {
        const statements = diffStatementsFor(w.engine);
        const diffs: Array<Awaited<ReturnType<typeof diffRelation>>> = [];
        for (const target of targets) {
          Context.current().heartbeat({ diffing: target.name });
          diffs.push(await diffRelation(w, statements, target, settings));
        }
        const audits = await evaluateRules(rules, auditTargets(targets, diffs), {
          query: (sql) => w.query(sql),
          quoteRelation: (relation) => w.dialect.quoteRelation(relation),
          statements,
        });
        const blocked = blockedBy(audits);
        return {
          deployId: input.deployId,
          computedAt: new Date().toISOString(),
          settings,
          relations: diffs.map((d) => d.diff),
          audits,
          ...(blocked ? { blocked } : {}),
        };
      });
      const dir = join(artifactsDirOf(input), stepId);
      await mkdir(dir, { recursive: true });
      const file = join(dir, 'diff.json');
      await writeFile(file, `${JSON.stringify(diff, null, 2)}\n`);
      const summary = summarizeDiff(diff, await artifactRef(file));
      return {
        summary: oneLine(diff),
        state: { diff: summary },
        ...(diff.blocked ? { blocked: diff.blocked } : {}),
      };
    },
  };
}

/** The step's summary line: what changes, and what the rules said. */
function oneLine(diff: ProdDiff): string {
  const count = (status: RelationDiff['status']) => diff.relations.filter((r) => r.status === status).length;
  const parts = [
    `${count('changed')} relations change, ${count('new')} new, ${count('dropped')} dropped, ${count('unchanged')} unchanged`,
  ];
  if (count('error')) parts.push(`${count('error')} could not be diffed`);
  if (diff.audits.length) {
    const failed = diff.audits.filter((o) => o.status === 'failed');
    const blocking = failed.filter((o) => o.severity === 'error');
    const rules = new Set(diff.audits.map((o) => o.rule)).size;
    parts.push(
      `${rules} audit rules: ${blocking.length ? `${new Set(blocking.map((o) => o.rule)).size} failed` : 'none failed'}` +
        (failed.length > blocking.length ? `, ${failed.length - blocking.length} warnings` : ''),
    );
  }
  return parts.join('; ');
}
